import FuzzDriver

// SwiftPM links a debug executable through this symbol; libFuzzer takes over from here.
@_cdecl("FuzzMail_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(.mail, argc, argv)
}

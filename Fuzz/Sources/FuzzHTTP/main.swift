import FuzzDriver

// SwiftPM links a debug executable through this symbol; libFuzzer takes over from here.
@_cdecl("FuzzHTTP_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(.http, argc, argv)
}

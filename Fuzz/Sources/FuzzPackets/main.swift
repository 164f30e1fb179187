import FuzzDriver

// SwiftPM links a debug executable through this symbol; libFuzzer takes over from here.
@_cdecl("FuzzPackets_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(.packets, argc, argv)
}

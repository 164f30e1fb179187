import EdgeFuzzTargets
import Foundation

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target this executable fuzzes; set once, before libFuzzer starts.
nonisolated(unsafe) private var current = FuzzTarget.dns

/// libFuzzer's entry for one input: a finding aborts, so libFuzzer keeps the input as a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try current.check(bytes)
    } catch {
        FileHandle.standardError.write(Data("edgesim fuzz finding (\(current.rawValue)): \(error)\n".utf8))
        abort()
    }
    return 0
}

/// Runs libFuzzer on `target` with the command line's arguments.
public func runFuzzer(_ target: FuzzTarget, _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    current = target
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

import CPcap
import Foundation

/// Records what crosses a host's interfaces through libpcap, on a thread of its own (entered
/// into the host's network namespace first), into a pcapng file, until stopped.
public final class LiveCapture: @unchecked Sendable {
    public struct Summary: Sendable, Hashable, Codable {
        public var file: String
        public var packets: Int
        public var bytes: Int
        /// Packets the kernel dropped before libpcap read them, and packets past the size limit.
        public var dropped: Int
        public var overLimit: Int
    }

    public let file: String
    private let stopping = NSLock()
    private var stopRequested = false
    private var handle: OpaquePointer?
    private var writer: PcapngWriter?
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    private var summary: Summary?

    /// Starts capturing; returns once libpcap listens (so nothing sent after is missed), or
    /// throws why it could not. `enter` runs first on the capture thread (e.g. into a namespace).
    public init(
        device: String = "any", filter: String?, file: String, limit: Int = 256 << 20, enter: @escaping @Sendable () throws -> Void
    ) throws(PcapError) {
        self.file = file
        let ready = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: PcapError?
        let thread = Thread { [self] in
            do {
                try enter()
                try open(device: device, filter: filter, limit: limit)
            } catch let error as PcapError {
                failure = error
            } catch {
                failure = PcapError(file: file, message: "\(error)")
            }
            ready.signal()
            if failure == nil { loop() }
            finished.signal()
        }
        thread.name = "edgesim capture \(device)"
        self.thread = thread
        thread.start()
        ready.wait()
        if let failure {
            finished.wait()
            throw failure
        }
    }

    private func open(device: String, filter: String?, limit: Int) throws(PcapError) {
        var errors = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_create(device, &errors) else {
            throw PcapError(
                file: file,
                message:
                    "cannot capture on \(device): \(String(decoding: errors.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
            )
        }
        pcap_set_snaplen(handle, 262_144)
        pcap_set_immediate_mode(handle, 1)
        // A burst of traffic waits here while the file is written, rather than being dropped.
        pcap_set_buffer_size(handle, 64 << 20)
        pcap_set_timeout(handle, 100)
        pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(handle)
        guard status >= 0 else {
            let reason = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            throw PcapError(
                file: file,
                message:
                    "cannot capture on \(device): \(reason)\(status == PCAP_ERROR_PERM_DENIED ? " (capturing needs root or CAP_NET_RAW)" : "")"
            )
        }
        if let filter {
            var program = bpf_program()
            guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0, pcap_setfilter(handle, &program) == 0 else {
                let reason = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw PcapError(file: file, message: "filter '\(filter)' is not a valid capture filter: \(reason)")
            }
            pcap_freecode(&program)
        }
        do {
            writer = try PcapngWriter(
                path: file, linkType: UInt16(truncatingIfNeeded: pcap_datalink(handle)), interface: device, limit: limit)
        } catch {
            pcap_close(handle)
            throw PcapError(file: file, message: error.description)
        }
        self.handle = handle
    }

    private func loop() {
        guard let handle, let writer else { return }
        let context = Unmanaged.passUnretained(writer).toOpaque()
        while !stopping.withLock({ stopRequested }) {
            let status = pcap_dispatch(
                handle, -1,
                { context, header, data in
                    guard let context, let header, let data else { return }
                    let writer = Unmanaged<PcapngWriter>.fromOpaque(UnsafeRawPointer(context)).takeUnretainedValue()
                    let time = header.pointee.ts
                    // Nanosecond precision: tv_usec holds nanoseconds.
                    let nanoseconds = UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec)
                    writer.write(
                        nanoseconds: nanoseconds, data: UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                        originalLength: Int(header.pointee.len))
                }, context.assumingMemoryBound(to: UInt8.self))
            if status < 0 && status != PCAP_ERROR_BREAK { break }
        }
        var stats = pcap_stat()
        let dropped = pcap_stats(handle, &stats) == 0 ? Int(stats.ps_drop) : 0
        writer.flush()
        summary = Summary(file: file, packets: writer.packets, bytes: writer.bytes, dropped: dropped, overLimit: writer.overLimit)
        // Under the lock, so `stop` never breaks a loop on a handle being closed.
        stopping.withLock { self.handle = nil }
        pcap_close(handle)
        self.writer = nil
    }

    /// Stops and closes the file; what was captured.
    public func stop() -> Summary {
        let first = stopping.withLock {
            defer { stopRequested = true }
            if !stopRequested, let handle { pcap_breakloop(handle) }
            return !stopRequested
        }
        if first { finished.wait() }
        return summary ?? Summary(file: file, packets: 0, bytes: 0, dropped: 0, overLimit: 0)
    }
}

import NIOCore

/// How a packet crosses between pods: in one UDP datagram, after a header naming the tunnel
/// it belongs to ("ESPT", then the tunnel's id, both big-endian 32-bit words).
public enum PodTunnelFrame {
    public static let magic: UInt32 = 0x4553_5054
    public static let headerSize = 8

    /// Writes the header and the packet; the packet's reader index does not move.
    public static func write(id: UInt32, packet: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(magic)
        buffer.writeInteger(id)
        buffer.writeImmutableBuffer(packet)
    }

    /// The tunnel id and the packet of a datagram; nil (the reader index unmoved) when the
    /// datagram is not a frame or carries no packet.
    public static func read(_ buffer: inout ByteBuffer) -> (id: UInt32, packet: ByteBuffer)? {
        guard buffer.readableBytes > headerSize, buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) == magic,
            let id = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self),
            let packet = buffer.getSlice(at: buffer.readerIndex + headerSize, length: buffer.readableBytes - headerSize)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return (id, packet)
    }
}

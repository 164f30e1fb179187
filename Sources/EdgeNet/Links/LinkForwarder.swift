import EdgeModel
import NIOCore

/// Reads packets from one side of a link and writes each to the other side at its arrival time.
final class LinkForwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let link: EmulatedLink
    private var schedule = LinkSchedule(shape: LinkShape())
    var peer: (any Channel)?

    init(link: EmulatedLink) {
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        let (shape, cut) = link.state.withLock { $0 }
        guard let peer, !cut else { return lose() }
        schedule.shape = shape
        let now = NIODeadline.now().uptimeNanoseconds
        guard case .at(let deadline) = schedule.schedule(bytes: packet.readableBytes, now: now, reliable: false) else { return lose() }
        link.tally.withLock { $0.forwarded += 1 }
        if deadline <= now {
            peer.writeAndFlush(packet, promise: nil)
        } else {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                // One packet per write: a TUN device or packet socket takes each write as one packet.
                peer.writeAndFlush(packet, promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A packet the other side's kernel refused (e.g. while the device is still down) is lost.
        lose()
    }

    private func lose() {
        link.tally.withLock { $0.lost += 1 }
    }
}

import EdgeSim

/// One line of the control channel, read as the node reads requests and as the runner reads
/// what nodes write: a message that decodes, encoded again, decodes to the same message.
enum ControlFuzzCheck {
    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        if let request = NodeControl.request(from: bytes) {
            let again = NodeControl.encode(request)
            guard NodeControl.request(from: Array(again.dropLast())) == request else {
                throw FuzzFinding("a control request does not survive encoding")
            }
        }
        if let output = NodeControl.output(from: bytes) {
            guard NodeControl.output(from: Array(NodeControl.encode(output).dropLast())) != nil else {
                throw FuzzFinding("a node's output line does not survive encoding")
            }
        }
    }
}

import Foundation

/// Cloudflare's answer envelope: `{success, errors, messages, result, result_info}`, and the
/// error codes this API answers with.
public enum SpectrumEnvelope {
    /// Error codes, as Cloudflare's API uses them.
    public enum Code: Int, Sendable {
        /// No or a wrong bearer token.
        case authentication = 10000
        /// A request body that is not a valid object.
        case invalidRequest = 10001
        /// A zone or application id that does not exist.
        case unknownObject = 7003
        /// No such path.
        case noRoute = 7000
        /// The fleet could not carry a valid change out.
        case failed = 10002
    }

    /// Which page of a list, as `page` and `per_page` ask (per_page 1...1000, default 20).
    public struct Page: Sendable, Hashable {
        public var page: Int
        public var perPage: Int

        public init(page: String?, perPage: String?) {
            self.page = max(1, page.flatMap { Int($0) } ?? 1)
            self.perPage = min(1000, max(1, perPage.flatMap { Int($0) } ?? 20))
        }

        /// This page's items and its `result_info`.
        public func slice<T>(_ items: [T]) -> ([T], [String: Any]) {
            let start = min(items.count, (page - 1) * perPage)
            let end = min(items.count, start + perPage)
            let chosen = Array(items[start..<end])
            let info: [String: Any] = [
                "page": page, "per_page": perPage, "count": chosen.count, "total_count": items.count,
                "total_pages": max(1, (items.count + perPage - 1) / perPage),
            ]
            return (chosen, info)
        }
    }

    public static func success(_ result: Any, info: [String: Any]? = nil) -> [UInt8] {
        var object: [String: Any] = ["success": true, "errors": [Any](), "messages": [Any](), "result": result]
        if let info { object["result_info"] = info }
        return encode(object)
    }

    public static func failure(_ code: Code, _ messages: [String]) -> [UInt8] {
        encode([
            "success": false, "errors": messages.map { ["code": code.rawValue, "message": $0] }, "messages": [Any](),
            "result": NSNull(),
        ])
    }

    static func encode(_ object: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
    }
}

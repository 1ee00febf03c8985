import Foundation
import Yams

/// A config section whose keys are checked: an unknown key is an error, not a
/// silently ignored typo.
public protocol ConfigSection: Decodable {
    /// Every key the section accepts.
    static var allowedKeys: Set<String> { get }
    /// Checks values that decode but make no sense (a hop of zero, a band above Nyquist).
    /// Throws `LasrError.invalidConfig` naming the field.
    func validate(path: String, section: String) throws
}

/// A parsed YAML config file (`configs/*.yaml`, `models/*/config.yaml`), read once,
/// from which typed sections are decoded.
public struct ConfigDocument {
    public let path: String
    private let root: Node.Mapping

    /// Parses `yaml`; `path` only names the document in errors.
    public init(yaml: String, path: String) throws {
        self.path = path
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            let first = String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
            throw LasrError(.invalidConfig, path: path, "not valid YAML: \(first)")
        }
        guard let mapping = node?.mapping else {
            throw LasrError(.invalidConfig, path: path, "expected a YAML mapping at the top level")
        }
        root = mapping
    }

    /// Reads and parses the file at `path`.
    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            if !FileManager.default.fileExists(atPath: path) {
                throw LasrError(.fileNotFound, path: path, "config file not found")
            }
            throw LasrError(.invalidConfig, path: path, "cannot read config file as UTF-8 text")
        }
        try self.init(yaml: text, path: path)
    }

    public func has(_ section: String) -> Bool { root[section] != nil }

    /// Decodes the mapping under `section`.
    public func section<T: ConfigSection>(_ type: T.Type, _ section: String) throws -> T {
        guard let node = root[section] else {
            throw LasrError(.invalidConfig, path: path, "missing section '\(section)'")
        }
        return try decode(type, node: node, name: section)
    }

    /// Decodes the top-level mapping itself (its keys are checked like a section's).
    public func topLevel<T: ConfigSection>(_ type: T.Type) throws -> T {
        try decode(type, node: Node.mapping(root), name: "top level")
    }

    private func decode<T: ConfigSection>(_ type: T.Type, node: Node, name: String) throws -> T {
        guard let fields = node.mapping else {
            throw LasrError(.invalidConfig, path: path, "line \(node.mark?.line ?? 0): '\(name)' is not a mapping")
        }
        for key in fields.keys {
            guard let keyName = key.string, T.allowedKeys.contains(keyName) else {
                let line = key.mark.map { "line \($0.line): " } ?? ""
                let known = T.allowedKeys.sorted().joined(separator: ", ")
                throw LasrError(.invalidConfig, path: path,
                                "\(line)unknown key '\(key.string ?? "?")' in '\(name)' (known: \(known))")
            }
        }
        let value: T
        do {
            value = try YAMLDecoder().decode(T.self, from: node)
        } catch let error as DecodingError {
            throw LasrError(.invalidConfig, path: path, "'\(name)': \(ConfigDocument.describe(error))")
        }
        try value.validate(path: path, section: name)
        return value
    }

    private static func describe(_ error: DecodingError) -> String {
        func keyPath(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = keyPath(context)
            return "missing key '\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "'\(keyPath(context))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// One-call access to a single section.
public enum ConfigFile {
    /// Decodes the mapping under `section` of the YAML file at `path`.
    public static func load<T: ConfigSection>(_ type: T.Type, section: String, from path: String) throws -> T {
        try ConfigDocument(path: path).section(type, section)
    }

    /// Decodes the mapping under `section` of a YAML document; `path` only names it in errors.
    public static func decode<T: ConfigSection>(_ type: T.Type, section: String, yaml: String, path: String) throws -> T {
        try ConfigDocument(yaml: yaml, path: path).section(type, section)
    }
}

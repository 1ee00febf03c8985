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

/// Reads sections of YAML config files (`configs/*.yaml`, `models/*/config.yaml`).
public enum ConfigFile {
    /// Decodes the mapping under `section` of the YAML file at `path`.
    public static func load<T: ConfigSection>(_ type: T.Type, section: String, from path: String) throws -> T {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            if !FileManager.default.fileExists(atPath: path) {
                throw LasrError(.fileNotFound, path: path, "config file not found")
            }
            throw LasrError(.invalidConfig, path: path, "cannot read config file as UTF-8 text")
        }
        return try decode(type, section: section, yaml: text, path: path)
    }

    /// Decodes the mapping under `section` of a YAML document; `path` only names it in errors.
    public static func decode<T: ConfigSection>(_ type: T.Type, section: String, yaml: String, path: String) throws -> T {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw LasrError(.invalidConfig, path: path, "not valid YAML: \(oneLine(error))")
        }
        guard let mapping = root?.mapping else {
            throw LasrError(.invalidConfig, path: path, "expected a YAML mapping at the top level")
        }
        guard let node = mapping[section] else {
            throw LasrError(.invalidConfig, path: path, "missing section '\(section)'")
        }
        guard let fields = node.mapping else {
            throw LasrError(.invalidConfig, path: path, "line \(node.mark?.line ?? 0): section '\(section)' is not a mapping")
        }
        for key in fields.keys {
            guard let name = key.string, T.allowedKeys.contains(name) else {
                let line = key.mark.map { "line \($0.line): " } ?? ""
                let known = T.allowedKeys.sorted().joined(separator: ", ")
                throw LasrError(.invalidConfig, path: path,
                                "\(line)unknown key '\(key.string ?? "?")' in '\(section)' (known: \(known))")
            }
        }
        let value: T
        do {
            value = try YAMLDecoder().decode(T.self, from: node)
        } catch let error as DecodingError {
            throw LasrError(.invalidConfig, path: path, "section '\(section)': \(describe(error))")
        }
        try value.validate(path: path, section: section)
        return value
    }

    private static func oneLine(_ error: Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
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

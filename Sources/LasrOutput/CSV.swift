/// CSV text per RFC 4180: fields separated by commas, records by CRLF-free `\n`
/// (what pandas, R, gnuplot and spreadsheets all read), and a field quoted — with
/// inner quotes doubled — whenever it holds a comma, a quote, or a line break.
public enum CSV {
    public static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func row(_ values: [String]) -> String {
        values.map(field).joined(separator: ",") + "\n"
    }

    /// Seconds with millisecond precision, the unit of every time column.
    public static func seconds(_ t: Double) -> String {
        String(format: "%.3f", t)
    }
}

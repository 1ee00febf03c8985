/// A dense row-major matrix of `Float`, the currency between pipeline stages
/// (features are `frames × bands`, encoder output is `frames × channels`).
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public let cols: Int
    /// `rows * cols` values, row after row.
    public var data: [Float]

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(rows >= 0 && cols >= 0 && data.count == rows * cols,
                     "Matrix: \(data.count) values do not fill \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        self.init(rows: rows, cols: cols, data: [Float](repeating: value, count: rows * cols))
    }

    public subscript(row: Int, col: Int) -> Float {
        get { data[row * cols + col] }
        set { data[row * cols + col] = newValue }
    }

    /// One row as an array (copies).
    public func row(_ r: Int) -> [Float] {
        Array(data[(r * cols)..<((r + 1) * cols)])
    }
}

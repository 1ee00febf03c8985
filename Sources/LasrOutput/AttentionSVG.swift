import Foundation
import LasrDecoding

/// A heatmap of one segment's attention matrix as SVG: tokens down the left (one row
/// each, labelled with their text), time in seconds along the bottom, darker cells
/// for more weight, and the monotonic alignment path the timestamps come from drawn
/// over it in red.
public enum AttentionSVG {
    public static func render(_ segment: TranscriptSegment, title: String) -> String {
        let tokens = segment.tokens
        let frames = segment.attention.first?.count ?? 0
        let cell = max(2.0, min(12.0, 900.0 / Double(max(frames, 1))))
        let rowHeight = 16.0, left = 110.0, top = 30.0, bottom = 40.0, right = 20.0
        let width = left + cell * Double(frames) + right
        let height = top + rowHeight * Double(tokens.count) + bottom
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(width))" height="\(fmt(height))" \
            viewBox="0 0 \(fmt(width)) \(fmt(height))" font-family="sans-serif" font-size="11">
            <title>\(escape(title))</title>
            <rect x="0" y="0" width="\(fmt(width))" height="\(fmt(height))" fill="white"/>
            <text x="\(fmt(left))" y="18" font-size="13">\(escape(title)): attention weights (token × encoder frame)</text>

            """
        // Cells: skip the near-zero ones, the background is white.
        for (i, _) in tokens.enumerated() {
            let row = segment.attention[i]
            let peak = max(row.max() ?? 1, 1e-6)
            for (j, w) in row.enumerated() where w / peak > 0.01 {
                let shade = Int(255 * (1 - min(1, Double(w / peak))))
                svg += "<rect x=\"\(fmt(left + cell * Double(j)))\" y=\"\(fmt(top + rowHeight * Double(i)))\" "
                    + "width=\"\(fmt(cell))\" height=\"\(fmt(rowHeight))\" fill=\"rgb(\(shade),\(shade),255)\"/>\n"
            }
            let label = token(tokens[i].piece)
            svg += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(top + rowHeight * (Double(i) + 0.75)))\" text-anchor=\"end\">\(escape(label))</text>\n"
        }
        // The alignment path.
        if !tokens.isEmpty {
            let points = tokens.enumerated().map { i, t in
                "\(fmt(left + cell * (Double(t.frame) + 0.5))),\(fmt(top + rowHeight * (Double(i) + 0.5)))"
            }.joined(separator: " ")
            svg += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"red\" stroke-width=\"1.5\"/>\n"
            for (i, t) in tokens.enumerated() {
                svg += "<circle cx=\"\(fmt(left + cell * (Double(t.frame) + 0.5)))\" cy=\"\(fmt(top + rowHeight * (Double(i) + 0.5)))\" r=\"2.5\" fill=\"red\"/>\n"
            }
        }
        // Frame border and time axis, a tick per second (per 5 s past 30 s).
        let plotBottom = top + rowHeight * Double(tokens.count)
        svg += "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(cell * Double(frames)))\" height=\"\(fmt(rowHeight * Double(tokens.count)))\" fill=\"none\" stroke=\"black\"/>\n"
        let duration = Double(frames) * segment.frameDuration
        let step = duration > 30 ? 5.0 : 1.0
        var t = 0.0
        while t <= duration + 1e-9 {
            let x = left + (t - segment.frameOffset) / segment.frameDuration * cell + cell / 2
            if x >= left && x <= left + cell * Double(frames) {
                svg += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(plotBottom))\" x2=\"\(fmt(x))\" y2=\"\(fmt(plotBottom + 5))\" stroke=\"black\"/>\n"
                svg += "<text x=\"\(fmt(x))\" y=\"\(fmt(plotBottom + 17))\" text-anchor=\"middle\">\(fmt(segment.start + t))</text>\n"
            }
            t += step
        }
        svg += "<text x=\"\(fmt(left + cell * Double(frames) / 2))\" y=\"\(fmt(plotBottom + 33))\" text-anchor=\"middle\">time (s)</text>\n"
        svg += "</svg>\n"
        return svg
    }

    static func token(_ piece: String) -> String {
        piece.replacingOccurrences(of: "\u{2581}", with: "_")
    }

    static func fmt(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(format: "%.2f", x)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

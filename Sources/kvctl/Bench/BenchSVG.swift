#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sweep's plot as a standalone SVG, written by hand: throughput against clients (measured
/// points and the fitted USL curve) above latency percentiles against clients. Clients are on a
/// log2 axis, latency on a log10 axis.
enum BenchSVG {
    static let width = 760.0
    static let panelHeight = 300.0
    static let marginLeft = 80.0
    static let marginRight = 150.0
    static let marginTop = 50.0
    static let panelGap = 70.0
    static let curveSamples = 120
    static let latencySeries: [(label: String, percentile: Double, color: String)] = [
        ("p50", 50, "#1f77b4"), ("p99", 99, "#ff7f0e"), ("p99.9", 99.9, "#d62728"),
    ]

    static var height: Double { marginTop + 2 * panelHeight + panelGap + 50 }

    static func render(_ results: [BenchRunResult], fit: USLFit?, title: String) -> String {
        let clients = results.map { Double($0.clients) }
        let lowClients = max(1, clients.min() ?? 1)
        let highClients = max(lowClients * 2, clients.max() ?? 2)
        let x = LogAxis(low: lowClients, high: highClients, base: 2, from: marginLeft, to: width - marginRight)
        var svg: [String] = []
        svg.append(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"sans-serif\" font-size=\"12\">")
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        svg.append(text(width / 2, 24, title, anchor: "middle", size: 15))

        // Throughput panel.
        let top = marginTop
        let fitted = fit.map { fit in (0...curveSamples).map { i in x.value(at: Double(i) / Double(curveSamples)) }.map { ($0, fit.throughput($0)) } } ?? []
        let highThroughput = max(1, (results.map(\.throughput) + fitted.map(\.1)).max() ?? 1) * 1.1
        let y = LinearAxis(low: 0, high: highThroughput, from: top + panelHeight, to: top)
        svg += frame(x: x, top: top, yTicks: y.ticks().map { ($0, y.position($0), BenchFormat.decimal($0, digits: 0)) })
        svg.append(text(18, top + panelHeight / 2, "requests/s", anchor: "middle", rotate: true))
        if !fitted.isEmpty {
            svg.append(polyline(fitted.map { (x.position($0.0), y.position($0.1)) }, color: "#555555", dashed: true))
        }
        for result in results {
            svg.append(circle(x.position(Double(result.clients)), y.position(result.throughput), color: "#2ca02c"))
        }
        svg.append(legend(at: top + 10, [("measured", "#2ca02c", false)] + (fit == nil ? [] : [("USL fit", "#555555", true)])))
        if let fit {
            svg.append(text(width - marginRight + 12, top + 70, "sigma \(BenchFormat.decimal(fit.sigma, digits: 4))"))
            svg.append(text(width - marginRight + 12, top + 88, "kappa \(BenchFormat.decimal(fit.kappa, digits: 6))"))
            let peak = fit.peakClients.map { "N* \(BenchFormat.fixed($0, digits: 1))" } ?? "no peak"
            svg.append(text(width - marginRight + 12, top + 106, peak))
        }

        // Latency panel.
        let latencyTop = marginTop + panelHeight + panelGap
        let latencies = results.flatMap { result in latencySeries.map { result.recorder.latencyMillis($0.percentile) } }.filter { $0 > 0 }
        let lowLatency = pow(10, floor(log10(latencies.min() ?? 0.1)))
        let highLatency = max(lowLatency * 10, pow(10, ceil(log10(latencies.max() ?? 1))))
        let ly = LogAxis(low: lowLatency, high: highLatency, base: 10, from: latencyTop + panelHeight, to: latencyTop)
        svg += frame(x: x, top: latencyTop, yTicks: ly.ticks().map { ($0, ly.position($0), BenchFormat.decimal($0, digits: 3)) })
        svg.append(text(18, latencyTop + panelHeight / 2, "latency ms", anchor: "middle", rotate: true))
        for series in latencySeries {
            let points = results.compactMap { result -> (Double, Double)? in
                let value = result.recorder.latencyMillis(series.percentile)
                return value > 0 ? (x.position(Double(result.clients)), ly.position(value)) : nil
            }
            if points.count > 1 { svg.append(polyline(points, color: series.color, dashed: false)) }
            for point in points { svg.append(circle(point.0, point.1, color: series.color)) }
        }
        svg.append(legend(at: latencyTop + 10, latencySeries.map { ($0.label, $0.color, false) }))
        svg.append(text((marginLeft + width - marginRight) / 2, height - 12, "clients (concurrent connections)", anchor: "middle"))
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    static func write(_ svg: String, to path: String) throws(BenchError) {
        guard let file = fopen(path, "w") else {
            throw .output("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(svg.utf8)
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        let closed = fclose(file)
        guard written == bytes.count, closed == 0 else { throw .output("cannot write \(path)") }
    }

    // MARK: Pieces

    private static func frame(x: LogAxis, top: Double, yTicks: [(Double, Double, String)]) -> [String] {
        let bottom = top + panelHeight
        var parts = [
            "<rect x=\"\(n(marginLeft))\" y=\"\(n(top))\" width=\"\(n(width - marginLeft - marginRight))\" height=\"\(n(panelHeight))\" fill=\"none\" stroke=\"#333333\"/>"
        ]
        for (_, position, label) in yTicks {
            parts.append(line(marginLeft, position, width - marginRight, position, color: "#e5e5e5"))
            parts.append(text(marginLeft - 6, position + 4, label, anchor: "end"))
        }
        for tick in x.ticks() {
            let position = x.position(tick)
            parts.append(line(position, top, position, bottom, color: "#e5e5e5"))
            parts.append(text(position, bottom + 16, BenchFormat.decimal(tick, digits: 0), anchor: "middle"))
        }
        return parts
    }

    private static func legend(at top: Double, _ entries: [(String, String, Bool)]) -> String {
        let left = width - marginRight + 12
        return entries.enumerated().map { index, entry in
            let y = top + Double(index) * 18
            return line(left, y, left + 22, y, color: entry.1, dashed: entry.2, widthPx: 2)
                + text(left + 28, y + 4, entry.0)
        }.joined(separator: "\n")
    }

    private static func polyline(_ points: [(Double, Double)], color: String, dashed: Bool) -> String {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        return "<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
    }

    private static func circle(_ x: Double, _ y: Double, color: String) -> String {
        "<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"4\" fill=\"\(color)\"/>"
    }

    private static func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, dashed: Bool = false, widthPx: Double = 1
    ) -> String {
        "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(color)\" stroke-width=\"\(n(widthPx))\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
    }

    static func text(
        _ x: Double, _ y: Double, _ content: String, anchor: String = "start", size: Double = 12, rotate: Bool = false
    ) -> String {
        let transform = rotate ? " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" : ""
        return "<text x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"\(anchor)\" font-size=\"\(n(size))\"\(transform)>\(escaped(content))</text>"
    }

    /// Text safe inside an element or an attribute.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    private static func n(_ value: Double) -> String {
        BenchFormat.decimal(value.isFinite ? value : 0, digits: 1)
    }
}

/// A linear axis mapping `low...high` onto pixels `from...to`.
struct LinearAxis {
    var low: Double
    var high: Double
    var from: Double
    var to: Double

    func position(_ value: Double) -> Double {
        from + (value - low) / (high - low) * (to - from)
    }

    /// About five round ticks (1, 2 or 5 times a power of ten apart).
    func ticks() -> [Double] {
        let rough = (high - low) / 5
        guard rough > 0, rough.isFinite else { return [low] }
        let power = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? rough
        var values: [Double] = []
        var value = (low / step).rounded(.up) * step
        while value <= high + step * 1e-9 {
            values.append(value)
            value += step
        }
        return values
    }
}

/// A logarithmic axis mapping `low...high` onto pixels `from...to`, ticks at powers of `base`.
struct LogAxis {
    var low: Double
    var high: Double
    var base: Double
    var from: Double
    var to: Double

    func position(_ value: Double) -> Double {
        let fraction = (log(max(value, low)) - log(low)) / (log(high) - log(low))
        return from + fraction * (to - from)
    }

    /// The value at `fraction` (0...1) of the way along the axis.
    func value(at fraction: Double) -> Double {
        exp(log(low) + fraction * (log(high) - log(low)))
    }

    func ticks() -> [Double] {
        var values: [Double] = []
        var value = pow(base, floor(log(low) / log(base) + 1e-9))
        while value <= high * (1 + 1e-9) {
            if value >= low * (1 - 1e-9) { values.append(value) }
            value *= base
        }
        return values
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted to measured
/// throughputs by least squares.
///
/// λ is the throughput of one client (measured at N = 1, or the lowest level's per-client
/// throughput without one). σ (contention) and κ (coherency) start from the linear least-squares
/// solution of λN/X − 1 = σ(N−1) + κN(N−1) and are then refined by Levenberg–Marquardt on the
/// throughput residuals themselves, kept within σ ∈ [0, 1], κ ≥ 0.
struct USLFit: Sendable, Equatable {
    /// A κ at or below this is no coherency cost at all: throughput never peaks.
    static let kappaNegligible = 1e-9
    static let iterationsMax = 200
    static let relativeImprovementMin = 1e-12

    var lambda: Double
    var sigma: Double
    var kappa: Double

    /// Throughput predicted for `clients`.
    func throughput(_ clients: Double) -> Double {
        lambda * clients / (1 + sigma * (clients - 1) + kappa * clients * (clients - 1))
    }

    /// N* = √((1 − σ)/κ), where throughput peaks; nil when κ ≈ 0 (no peak).
    var peakClients: Double? {
        guard kappa > Self.kappaNegligible else { return nil }
        return max(1, ((1 - sigma) / kappa).squareRoot())
    }

    /// Fits the law to `(clients, throughput)` points; nil with fewer than two levels or without
    /// any positive throughput.
    static func fit(_ points: [(clients: Double, throughput: Double)]) -> USLFit? {
        let usable = points.filter { $0.clients >= 1 && $0.throughput > 0 && $0.throughput.isFinite }
        guard usable.count >= 2, let lowest = usable.min(by: { $0.clients < $1.clients }) else { return nil }
        let lambda = lowest.throughput / lowest.clients
        var model = linearEstimate(usable, lambda: lambda)
        model.refine(usable)
        return model
    }

    /// Least squares of y = σa + κb with y = λN/X − 1, a = N − 1, b = N(N − 1), no intercept.
    static func linearEstimate(_ points: [(clients: Double, throughput: Double)], lambda: Double) -> USLFit {
        var saa = 0.0, sab = 0.0, sbb = 0.0, say = 0.0, sby = 0.0
        for point in points where point.clients > 1 {
            let n = point.clients
            let y = lambda * n / point.throughput - 1
            let a = n - 1
            let b = n * (n - 1)
            saa += a * a
            sab += a * b
            sbb += b * b
            say += a * y
            sby += b * y
        }
        let determinant = saa * sbb - sab * sab
        var sigma = 0.0
        var kappa = 0.0
        if determinant > 1e-12 * max(saa * sbb, 1e-300) {
            sigma = (say * sbb - sby * sab) / determinant
            kappa = (saa * sby - sab * say) / determinant
        } else if saa > 0 {
            sigma = say / saa
        }
        if kappa < 0 {
            // Refit σ alone with κ = 0.
            kappa = 0
            sigma = saa > 0 ? say / saa : 0
        }
        if sigma < 0 || sigma > 1 {
            sigma = min(max(sigma, 0), 1)
            kappa = sbb > 0 ? max(0, (sby - sigma * sab) / sbb) : 0
        }
        return USLFit(lambda: lambda, sigma: sigma, kappa: kappa)
    }

    /// Sum of squared throughput residuals.
    func squaredError(_ points: [(clients: Double, throughput: Double)]) -> Double {
        points.reduce(0) { sum, point in
            let residual = point.throughput - throughput(point.clients)
            return sum + residual * residual
        }
    }

    /// Levenberg–Marquardt on (σ, κ) with λ fixed, projected onto σ ∈ [0, 1], κ ≥ 0.
    mutating func refine(_ points: [(clients: Double, throughput: Double)]) {
        var damping = 1e-3
        var error = squaredError(points)
        for _ in 0..<Self.iterationsMax {
            var jss = 0.0, jsk = 0.0, jkk = 0.0, gs = 0.0, gk = 0.0
            for point in points {
                let n = point.clients
                let denominator = 1 + sigma * (n - 1) + kappa * n * (n - 1)
                let residual = point.throughput - lambda * n / denominator
                let common = lambda * n / (denominator * denominator)
                // Derivatives of the model (the residual's are their negatives).
                let ds = -common * (n - 1)
                let dk = -common * n * (n - 1)
                jss += ds * ds
                jsk += ds * dk
                jkk += dk * dk
                gs += ds * residual
                gk += dk * residual
            }
            var improved = false
            while damping < 1e12 {
                let a = jss * (1 + damping), d = jkk * (1 + damping)
                let determinant = a * d - jsk * jsk
                guard determinant > 0 else {
                    damping *= 10
                    continue
                }
                let stepSigma = (gs * d - gk * jsk) / determinant
                let stepKappa = (a * gk - jsk * gs) / determinant
                let candidate = USLFit(
                    lambda: lambda, sigma: min(max(sigma + stepSigma, 0), 1), kappa: max(kappa + stepKappa, 0))
                let candidateError = candidate.squaredError(points)
                if candidateError < error {
                    let gain = (error - candidateError) / max(error, 1e-300)
                    self = candidate
                    error = candidateError
                    damping = max(damping / 10, 1e-12)
                    improved = gain > Self.relativeImprovementMin
                    break
                }
                damping *= 10
            }
            if !improved { return }
        }
    }
}

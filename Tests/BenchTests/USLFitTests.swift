import Testing

@testable import kvctl

@Suite struct USLFitTests {
    static let levels: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256]

    static func synthetic(lambda: Double, sigma: Double, kappa: Double, noise: [Double] = []) -> [(clients: Double, throughput: Double)] {
        let law = USLFit(lambda: lambda, sigma: sigma, kappa: kappa)
        return levels.enumerated().map { index, n in
            (n, law.throughput(n) * (1 + (noise.isEmpty ? 0 : noise[index % noise.count])))
        }
    }

    @Test func recoversExactParameters() throws {
        let fit = try #require(USLFit.fit(Self.synthetic(lambda: 1000, sigma: 0.05, kappa: 0.0005)))
        #expect(abs(fit.lambda - 1000) < 1e-9)
        #expect(abs(fit.sigma - 0.05) < 1e-6)
        #expect(abs(fit.kappa - 0.0005) < 1e-8)
        let peak = try #require(fit.peakClients)
        #expect(abs(peak - (0.95 / 0.0005).squareRoot()) < 1e-3)
    }

    @Test(arguments: [(0.02, 0.0001), (0.3, 0.01), (0.001, 0.00002), (0.6, 0.0)])
    func recoversParametersAcrossShapes(sigma: Double, kappa: Double) throws {
        let fit = try #require(USLFit.fit(Self.synthetic(lambda: 250, sigma: sigma, kappa: kappa)))
        #expect(abs(fit.sigma - sigma) < 1e-5)
        #expect(abs(fit.kappa - kappa) < 1e-7)
    }

    @Test func toleratesNoise() throws {
        // A fixed ±3 % pattern (no randomness): λ comes from N = 1, which carries +1 % here.
        let noisy = Self.synthetic(lambda: 1000, sigma: 0.05, kappa: 0.0005, noise: [0.01, -0.03, 0.02, 0.03, -0.02, -0.01, 0.03, -0.03, 0.0])
        let fit = try #require(USLFit.fit(noisy))
        #expect(abs(fit.sigma - 0.05) < 0.02)
        #expect(abs(fit.kappa - 0.0005) < 0.0002)
        // The refinement never ends worse than the linearised start.
        let start = USLFit.linearEstimate(noisy, lambda: fit.lambda)
        #expect(fit.squaredError(noisy) <= start.squaredError(noisy) + 1e-9)
    }

    @Test func linearScalingHasNoPeak() throws {
        let fit = try #require(USLFit.fit(Self.levels.map { ($0, 100 * $0) }))
        #expect(fit.sigma < 1e-9)
        #expect(fit.kappa < 1e-12)
        #expect(fit.peakClients == nil)
    }

    @Test func needsTwoLevels() {
        #expect(USLFit.fit([(1, 100)]) == nil)
        #expect(USLFit.fit([]) == nil)
        #expect(USLFit.fit([(1, 0), (2, 0)]) == nil)
    }

    @Test func lambdaFromLowestLevelWithoutOne() throws {
        let points = Self.synthetic(lambda: 500, sigma: 0.1, kappa: 0.001).filter { $0.clients >= 4 }
        let fit = try #require(USLFit.fit(points))
        // Without N = 1, λ is the lowest level's per-client throughput: a lower bound.
        #expect(fit.lambda <= 500)
        #expect(fit.lambda > 0)
        #expect(fit.sigma >= 0 && fit.sigma <= 1 && fit.kappa >= 0)
    }
}

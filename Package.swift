// swift-tools-version:6.1
import PackageDescription

// The library is split by pipeline stage; `lasr` is a thin command-line shell over it.
let package = Package(
    name: "lasr",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "lasr", targets: ["lasr"]),
        .library(name: "LasrAudio", targets: ["LasrAudio"]),
        .library(name: "LasrFeatures", targets: ["LasrFeatures"]),
        .library(name: "LasrNN", targets: ["LasrNN"]),
        .library(name: "LasrModel", targets: ["LasrModel"]),
        .library(name: "LasrDecoding", targets: ["LasrDecoding"]),
        .library(name: "LasrEval", targets: ["LasrEval"]),
        .library(name: "LasrOutput", targets: ["LasrOutput"]),
        .library(name: "LasrStream", targets: ["LasrStream"]),
        .library(name: "LasrServer", targets: ["LasrServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Tests only: an independent CSV parser to read the dumps back.
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        // `lasr serve`: HTTP and WebSocket on Hummingbird 2.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // C libraries, wrapped as system-library targets (Debian: libsndfile1-dev, libfftw3-dev, libopenblas-dev, libopus-dev).
        .systemLibrary(
            name: "CSndFile", pkgConfig: "sndfile",
            providers: [.apt(["libsndfile1-dev"]), .brew(["libsndfile"])]),
        .systemLibrary(
            name: "CFFTW", pkgConfig: "fftw3f",
            providers: [.apt(["libfftw3-dev"]), .brew(["fftw"])]),
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        // Ogg Opus without libsndfile's multistream wrapper (Sources/LasrAudio/OggOpusFile.swift says why).
        // Debian's libsndfile1-dev depends on both.
        .systemLibrary(
            name: "COpus", pkgConfig: "opus",
            providers: [.apt(["libopus-dev", "libogg-dev"]), .brew(["opus", "libogg"])]),
        // zlib: Whisper's compression-ratio guard is defined by zlib's compressed size.
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),

        // Shared vocabulary of the stages: errors, matrices, config files.
        .target(name: "LasrCore", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Stage 1: files and streams in, 16 kHz mono out.
        .target(name: "LasrAudio", dependencies: ["LasrCore", "CSndFile", "COpus"]),
        // Stage 2: log-mel features.
        .target(name: "LasrFeatures", dependencies: ["LasrCore", "CFFTW"]),
        // Stage 3: tensors, weights files and the BLAS-backed layers.
        .target(name: "LasrNN", dependencies: ["LasrCore", "COpenBLAS"]),
        // Stage 4: the native model (conv encoder, attention, LSTM speller) loaded from its directory.
        .target(name: "LasrModel", dependencies: ["LasrCore", "LasrFeatures", "LasrNN", "CZlib"]),
        // Stage 5: beam search, vocabulary decoding, timestamps from the attention alignments.
        .target(name: "LasrDecoding", dependencies: ["LasrCore", "LasrAudio", "LasrFeatures", "LasrNN", "LasrModel", "CZlib"]),
        // Live recognition: PCM/WAV streams, endpointing, a decoder thread.
        .target(name: "LasrStream", dependencies: ["LasrCore", "LasrAudio", "LasrModel", "LasrDecoding"]),
        // Stage 6: transcript files (txt, json, srt, vtt, csv) and alignment dumps (CSV, SVG).
        .target(name: "LasrOutput", dependencies: ["LasrCore", "LasrDecoding"]),
        // `lasr serve`: the OpenAI-compatible HTTP API, live WebSocket streams, the web page.
        .target(
            name: "LasrServer",
            dependencies: [
                "LasrCore", "LasrAudio", "LasrNN", "LasrModel", "LasrDecoding", "LasrOutput", "LasrStream",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ]),
        // Scoring: text normalization, WER/CER, word timing errors, manifests.
        .target(name: "LasrEval", dependencies: ["LasrCore"]),

        .executableTarget(
            name: "lasr",
            dependencies: [
                "LasrCore", "LasrAudio", "LasrFeatures", "LasrModel", "LasrDecoding", "LasrEval", "LasrOutput", "LasrStream", "LasrServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Fuzzing (docs/fuzzing.md): the targets' entry points, shared by the libFuzzer
        // executables and the regression tests; one thin executable per target.
        // CLibFuzzer declares libFuzzer's driver, which only the fuzz build links.
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "LasrFuzz", dependencies: ["LasrCore", "LasrAudio", "LasrNN", "LasrModel", "LasrEval", "LasrStream", "CLibFuzzer"]),
        .executableTarget(name: "fuzz-audio", dependencies: ["LasrFuzz"]),
        .executableTarget(name: "fuzz-opus", dependencies: ["LasrFuzz"]),
        .executableTarget(name: "fuzz-pcm-stream", dependencies: ["LasrFuzz"]),
        .executableTarget(name: "fuzz-model", dependencies: ["LasrFuzz"]),
        .executableTarget(name: "fuzz-manifest", dependencies: ["LasrFuzz"]),

        .testTarget(
            name: "LasrTests",
            dependencies: ["LasrCore", "LasrAudio", "LasrFeatures", "LasrNN", "LasrModel", "LasrDecoding", "LasrEval", "LasrOutput", "LasrStream", "LasrFuzz",
                           .product(name: "SwiftCSV", package: "SwiftCSV")],
            exclude: ["Fixtures"]),
        // The server's pieces without a socket: forms, response shapes, errors, the worker pool, the router.
        .testTarget(
            name: "LasrServerTests",
            dependencies: ["LasrServer", "LasrCore", "LasrDecoding", "LasrOutput",
                           .product(name: "HummingbirdTesting", package: "hummingbird")]),
    ]
)

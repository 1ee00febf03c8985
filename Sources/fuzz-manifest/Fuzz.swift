import LasrFuzz

// libFuzzer's driver in the fuzz build, a replayer of files otherwise (FuzzMain says why).
@main
enum Main {
    static func main() { FuzzMain.run(.manifest) }
}

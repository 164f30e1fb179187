import EdgeCLI

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Edgesim {
    static func main() async {
        exit(await EdgesimMain.run())
    }
}

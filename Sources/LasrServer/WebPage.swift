/// The page at `/`: placeholder until the page lands.
enum WebPage {
    static let html = "<!doctype html><title>lasr</title><p>lasr serve</p>"
}

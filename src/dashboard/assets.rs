//! The dashboard page's files, compiled into the binary so it works offline and nothing is
//! fetched from elsewhere.

/// The page.
pub const INDEX: &str = include_str!("assets/index.html");
/// Its script (fetches the data, draws the charts).
pub const SCRIPT: &str = include_str!("assets/dashboard.js");
/// Where the page loads its script.
pub const SCRIPT_PATH: &str = "/dashboard/dashboard.js";
/// Its style sheet.
pub const STYLE: &str = include_str!("assets/dashboard.css");
/// Where the page loads its style sheet.
pub const STYLE_PATH: &str = "/dashboard/dashboard.css";
/// Its icon.
pub const ICON: &str = include_str!("assets/icon.svg");
/// Where the page loads its icon.
pub const ICON_PATH: &str = "/dashboard/icon.svg";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        for path in [SCRIPT_PATH, STYLE_PATH, ICON_PATH] {
            assert!(INDEX.contains(&format!("\"{path}\"")), "{path}");
        }
        // The only absolute URL is the SVG namespace, which is a name, not a fetch.
        for text in [INDEX, SCRIPT, STYLE, ICON] {
            assert!(
                text.match_indices("http")
                    .all(|(at, _)| text[at..].starts_with("http://www.w3.org/2000/svg")),
                "an absolute URL in an asset"
            );
            assert!(!text.contains("//cdn"), "a CDN in an asset");
        }
    }
}

//! The README's quick start, run as written: its `forten up` line (on a free port and a fresh
//! data directory) and its curl lines, pointed at that port.

use std::process::Command;

use crate::support::Forten;

/// The first ```sh block after `<!-- quickstart:<name> -->` in the README.
fn block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- quickstart:{name} -->");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README lacks {marker}"))..];
    let start = after.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = after[start..].find("```").expect("the block's end");
    after[start..start + end].to_owned()
}

#[tokio::test]
async fn the_readme_quick_start_works_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    // `FORTEN_ADMIN_PASSWORD=… cargo run --release -p forten -- up`
    let up_line = block(&readme, "up");
    let (assignments, command) = up_line
        .trim()
        .split_once(" cargo run --release -p forten -- ")
        .expect("the up line runs forten through cargo");
    assert_eq!(command, "up");
    let env: Vec<(&str, String)> = assignments
        .split_whitespace()
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap();
            (k, v.to_owned())
        })
        .collect();
    let (mut up, _data, urls) = Forten::up("forten-quickstart", &env).await;
    let gateway = &urls["api-gateway"];

    let script = block(&readme, "try").replace("http://127.0.0.1:3000", gateway);
    let out = Command::new("sh")
        .args(["-eu", "-c", &script])
        .output()
        .expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the quick start failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""decision":"granted""#), "{stdout}");
    assert!(stdout.contains(r#""key":"access.granted""#), "{stdout}");
    assert!(stdout.contains(r#""key":"user.created""#), "{stdout}");
    assert_eq!(up.stop(), Some(0), "{}", up.output());
}

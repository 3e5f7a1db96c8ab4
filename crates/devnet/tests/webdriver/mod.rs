//! A small W3C WebDriver client for the console test: Debian's `chromedriver` (package
//! `chromium-driver`) on a free loopback port, driving headless `chromium`. Only the commands
//! the test needs; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    shots: PathBuf,
    /// Where the browser saves downloads.
    pub downloads: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn find_program(names: &[&str]) -> PathBuf {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "none of {names:?} is installed: the console test needs Debian's chromium and \
         chromium-driver packages (./dev.sh setup test installs them)"
    )
}

impl Browser {
    /// Starts chromedriver and a headless chromium session that accepts the devnet's
    /// self-made certificate authority (`acceptInsecureCerts`), saves downloads in
    /// `downloads`, and whose screenshots go to `shots`.
    pub async fn start(downloads: &Path, shots: &Path) -> Browser {
        std::fs::create_dir_all(downloads).unwrap();
        std::fs::create_dir_all(shots).unwrap();
        let driver_bin = find_program(&["chromedriver"]);
        let chromium = find_program(&["chromium", "chromium-browser"]);
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_bin.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            base,
            shots: shots.to_path_buf(),
            downloads: downloads.to_path_buf(),
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .ok();
            if let Some(r) = ready {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < end, "chromedriver not ready after 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1600,1200",
                         "--no-first-run", "--no-default-browser-check"],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                }
            }
        }}});
        let v = browser.raw("POST", "/session", Some(caps)).await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        browser
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "webdriver {method} {path}: HTTP {status}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The first element matching `css` (it must exist).
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Types `text` into the element matching `css` (for a file input: the file's path).
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clears a text field, then types `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/clear"), None).await;
        self.type_into(css, text).await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), None).await;
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Polls `script` until it returns something other than null, false or "" and returns
    /// that; panics with `what` after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        args: Value,
    ) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let v = self.exec(script, args.clone()).await;
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            if Instant::now() >= end {
                let status = self
                    .exec(
                        "const s = document.getElementById('status'); return s ? s.textContent : '';",
                        json!([]),
                    )
                    .await;
                let shot = self.screenshot(&format!("timeout-{}", slug(what))).await;
                panic!(
                    "waited {timeout:?} for {what}; page status: {status}; screenshot {}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Accepts the open `confirm()` dialog, waiting up to 10 s for it.
    pub async fn accept_alert(&self) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/alert/accept", self.base, self.session);
            let r = self.http.post(url).json(&json!({})).send().await.unwrap();
            if r.status().is_success() {
                return;
            }
            assert!(Instant::now() < end, "no dialog to accept");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot of the page as `NAME.png` in the screenshot directory.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Waits up to `timeout` for a finished download named `name` and returns its contents.
    pub async fn downloaded(&self, name: &str, timeout: Duration) -> String {
        let path = self.downloads.join(name);
        let end = Instant::now() + timeout;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.is_empty()
            {
                return text;
            }
            assert!(
                Instant::now() < end,
                "no download {} after {timeout:?}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect()
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (chromedriver closes chromium), then the driver. Plain blocking
        // HTTP/1.1 on the loopback socket: drop may run outside the runtime (a panic).
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session
            );
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

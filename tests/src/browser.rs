//! Headless Chromium from Debian, driven over WebDriver by chromedriver, for
//! the tests that use the dashboard the way a person does: they type into its
//! forms, click its buttons, read what it shows and take screenshots.

use std::{
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Desktop and phone: every screenshot is taken at both.
pub const WIDTHS: [(u32, u32); 2] = [(1280, 900), (390, 844)];

pub struct Browser {
    client: Client,
    driver: Child,
    profile: PathBuf,
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and opens one browser window.
    /// Screenshots go to `shots` (kept after the test, for a person to look at).
    pub async fn start(shots: &Path) -> Self {
        let chromedriver = std::env::var("SMSOPS_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_string());
        let chromium =
            std::env::var("SMSOPS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
        assert!(
            Path::new(&chromedriver).exists() && Path::new(&chromium).exists(),
            "{chromium} and {chromedriver} are needed: `make deps` installs Debian's chromium and chromium-driver"
        );
        let addr = crate::free_addr();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {chromedriver}: {err}"));
        crate::wait_listening(addr, "chromedriver").await;

        let profile =
            std::env::temp_dir().join(format!("smsops-chromium-{}", uuid::Uuid::new_v4().simple()));
        let (width, height) = WIDTHS[0];
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--no-first-run".to_string(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        // Chromium refuses to run as root with its sandbox on.
        if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
            args.push("--no-sandbox".to_string());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({"binary": chromium, "args": args}),
        );
        // The console, for `console_errors`.
        capabilities.insert("goog:loggingPrefs".to_string(), json!({"browser": "ALL"}));
        let client = ClientBuilder::rustls()
            .expect("rustls client")
            .capabilities(capabilities)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a chromium session");
        std::fs::create_dir_all(shots).unwrap();
        Self {
            client,
            driver,
            profile,
            shots: shots.to_path_buf(),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Types into the field `name` of the form `form`.
    pub async fn fill(&self, form: &str, name: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(&format!("{form} [name={name}]")))
            .await
            .unwrap_or_else(|err| panic!("no field {name} in {form}: {err}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Picks the first option of the select at `css` whose text contains
    /// `text`, as a person picking it would (React hears the change).
    pub async fn choose(&self, css: &str, text: &str) {
        let chosen = self
            .script(&format!(
                "const s = document.querySelector({}); \
                 const o = s && [...s.options].find((o) => o.value && o.text.includes({})); \
                 if (!o) return false; \
                 const set = Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set; \
                 set.call(s, o.value); s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;",
                json!(css),
                json!(text)
            ))
            .await;
        assert_eq!(chosen, json!(true), "no option {text:?} at {css}");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("nothing to click at {css}: {err}"))
            .click()
            .await
            .unwrap();
    }

    /// Signs in through the page's form and waits until the page shows who.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.fill("#sign-in", "email", email).await;
        self.fill("#sign-in", "password", password).await;
        self.click("#sign-in button").await;
        self.wait_until(
            &format!("the page shows {email} signed in"),
            "const who = document.querySelector('#who'); return who ? who.textContent : ''",
            |who| who.as_str().is_some_and(|w| w.contains(email)),
        )
        .await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Runs `script` every 100 ms until `done` holds for what it returns
    /// (at most 15 s), and returns that.
    pub async fn wait_until(
        &self,
        what: &str,
        script: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.script(script).await;
            if done(&value) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let shot = self.screenshot("timed-out").await;
                panic!(
                    "timed out waiting until {what}; last value {value}; page at {}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the element at `css` is on screen (exists, not hidden).
    pub async fn visible(&self, css: &str) -> bool {
        let script = format!(
            "const e = document.querySelector({}); return !!e && e.offsetParent !== null;",
            json!(css)
        );
        self.script(&script).await.as_bool().unwrap_or(false)
    }

    /// The text the element at `css` shows.
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null;",
            json!(css)
        );
        self.script(&script)
            .await
            .as_str()
            .unwrap_or_else(|| panic!("nothing at {css}"))
            .to_string()
    }

    /// The path and query of every request the page has made, in order.
    pub async fn requests(&self) -> Vec<String> {
        let value = self
            .script(
                "return performance.getEntriesByType('resource')\
                 .map((e) => { const u = new URL(e.name); return u.pathname + u.search; });",
            )
            .await;
        serde_json::from_value(value).unwrap()
    }

    /// A screenshot of the window as it is, saved as `<label>.png`.
    pub async fn screenshot(&self, label: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = self.shots.join(format!("{label}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// A screenshot at each of [`WIDTHS`], the whole page tall, then back
    /// to the first width.
    pub async fn screenshots(&self, label: &str) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for (width, height) in WIDTHS {
            self.client.set_window_size(width, height).await.unwrap();
            let tall = self
                .script("return document.documentElement.scrollHeight;")
                .await
                .as_u64()
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(height);
            self.client
                .set_window_size(width, tall.clamp(height, 6000))
                .await
                .unwrap();
            // Nothing may push the page sideways: at a phone's width every
            // control must be reachable without scrolling across.
            let wide = self
                .script("return document.documentElement.scrollWidth;")
                .await
                .as_u64()
                .unwrap_or_default();
            // Nor may a table hide part of itself behind its own scroll bar.
            let clipped = self
                .script(
                    "return [...document.querySelectorAll('.scroll')]\
                     .filter((e) => e.scrollWidth > e.clientWidth + 1)\
                     .map((e) => e.querySelector('table') ? e.querySelector('table').id : '?');",
                )
                .await;
            let shot = self.screenshot(&format!("{label}-{width}")).await;
            assert!(
                wide <= u64::from(width),
                "{label} is {wide} px wide at {width} px: {}",
                shot.display()
            );
            assert_eq!(
                clipped,
                json!([]),
                "{label}: these tables scroll sideways at {width} px: {}",
                shot.display()
            );
            paths.push(shot);
        }
        let (width, height) = WIDTHS[0];
        self.client.set_window_size(width, height).await.unwrap();
        paths
    }

    /// What the page wrote to the console at level SEVERE since the last
    /// call: uncaught errors, failed requests (a 403 the page caused
    /// itself), Content-Security-Policy refusals.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(Chromedriver::console_log())
            .await
            .unwrap_or_else(|err| panic!("chromedriver gave no console log: {err}"));
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The WCAG 2 A and AA rules axe-core (the dashboard's dev dependency)
    /// finds broken on the page as it is: labels, names, contrast, roles.
    /// Each as "rule: what (where)".
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../dashboard/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe)
            .unwrap_or_else(|err| panic!("{}: {err}; `make dashboard` installs it", axe.display()));
        self.script(&format!("{source}\nreturn null;")).await;
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}) \
                   .then((r) => done(r.passes.length === 0 ? ['axe checked nothing'] : \
                     r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.slice(0, 3) \
                     .map((n) => n.target.join(' ')).join(', ')})`))) \
                   .catch((e) => done([`axe failed: ${e}`]));",
                Vec::new(),
            )
            .await
            .unwrap_or_else(|err| panic!("axe did not run: {err}"));
        serde_json::from_value(found).unwrap_or_default()
    }

    /// Fails the test when the page wrote an error to its console.
    pub async fn assert_no_console_errors(&self, page: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
    }

    /// Opens the view at `path` through the page's own navigation (no
    /// reload), and waits until it is drawn.
    pub async fn open_view(&self, path: &str) {
        self.click(&format!("header nav a[href={}]", json!(path)))
            .await;
        self.wait_until(
            &format!("the page shows {path}"),
            "return location.pathname",
            |at| at.as_str() == Some(path),
        )
        .await;
    }

    /// Cuts the page off the network, or gives it back (Chromium's own
    /// network emulation, through chromedriver).
    pub async fn set_offline(&self, offline: bool) {
        self.client
            .issue_cmd(Chromedriver::network(offline))
            .await
            .unwrap_or_else(|err| panic!("chromedriver would not set the network: {err}"));
    }

    /// The element at `css` exists.
    pub async fn exists(&self, css: &str) -> bool {
        let script = format!("return document.querySelector({}) !== null;", json!(css));
        self.script(&script).await.as_bool().unwrap_or(false)
    }

    /// Quits the browser; dropping it without this (a failed test) kills it.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// One of chromedriver's own endpoints below the session, which W3C
/// WebDriver lacks: the console log (legacy `se/log`), network emulation.
#[derive(Debug)]
struct Chromedriver {
    path: &'static str,
    method: http::Method,
    body: Option<serde_json::Value>,
}

impl Chromedriver {
    fn console_log() -> Self {
        Self {
            path: "se/log",
            method: http::Method::POST,
            body: Some(json!({"type": "browser"})),
        }
    }

    fn network(offline: bool) -> Self {
        let conditions = json!({"network_conditions": {
            "offline": true, "latency": 0, "download_throughput": -1, "upload_throughput": -1,
        }});
        Self {
            path: "chromium/network_conditions",
            method: if offline {
                http::Method::POST
            } else {
                http::Method::DELETE
            },
            body: offline.then_some(conditions),
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for Chromedriver {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(ToString::to_string),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium processes it started share its
        // process group, so none of them outlives the test.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

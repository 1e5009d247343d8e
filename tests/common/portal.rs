//! A stand-in for the desktop's portal service (`org.freedesktop.portal.Desktop`) on a private
//! session bus: the GlobalShortcuts and RemoteDesktop interfaces and the host app registry, as
//! the portal's documentation describes them (requests answered by a `Response` signal on the
//! request's own object path, after the method's reply; sessions as objects with `Close`;
//! `Activated`/`Deactivated` sent to the session's owner). It records what the app asked and
//! which keys it sent; the test plays the user (presses the shortcut, allows or refuses).
//!
//! It cannot show that GNOME or KDE do the same: it shows that the app speaks the documented
//! protocol, on a real bus, through the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(dead_code)]
#![allow(
    clippy::unused_self,
    clippy::used_underscore_binding,
    reason = "D-Bus methods and properties: zbus's interface macro wants &self, and reads every argument the portal's signature has, used or not"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::message::Header;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

const PATH: &str = "/org/freedesktop/portal/desktop";

/// What the app asked of the portal, and what it typed.
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// App ids registered with the host registry.
    pub registered: Vec<String>,
    /// Shortcuts bound: (id, preferred trigger).
    pub shortcuts: Vec<(String, Option<String>)>,
    /// The owner and path of the shortcut session.
    pub shortcut_session: Option<(String, String)>,
    /// SelectDevices calls: (device types, persist mode, restore token).
    pub selected: Vec<(Option<u32>, Option<u32>, Option<String>)>,
    /// Remote desktop sessions started.
    pub started: usize,
    /// Keysyms sent: (keysym, pressed).
    pub keys: Vec<(i32, bool)>,
    /// When each of `keys` arrived.
    pub key_times: Vec<Instant>,
    /// Sessions closed.
    pub closed: Vec<String>,
    /// Remote desktop sessions: (owner, path).
    pub keyboards: Vec<(String, String)>,
    /// Remote desktop sessions the desktop ended (the user stopped the remote control).
    pub revoked: Vec<String>,
    /// Keys refused (sent to a session that had ended).
    pub refused: usize,
}

impl Log {
    /// The text the keys typed (each press of a character's keysym).
    pub fn typed(&self) -> String {
        self.keys
            .iter()
            .filter(|(_, pressed)| *pressed)
            .filter_map(|(keysym, _)| {
                let keysym = *keysym as u32;
                match keysym {
                    0xff0d => Some('\n'),
                    0xff09 => Some('\t'),
                    0x20..=0xff => char::from_u32(keysym),
                    k if k >= 0x0100_0000 => char::from_u32(k - 0x0100_0000),
                    _ => None,
                }
            })
            .collect()
    }

    /// Every key pressed was released, right after.
    pub fn balanced(&self) -> bool {
        self.keys.len().is_multiple_of(2)
            && self
                .keys
                .chunks(2)
                .all(|pair| pair[0].0 == pair[1].0 && pair[0].1 && !pair[1].1)
    }
}

/// Runs `BIN type -- TEXT` as on a Wayland desktop whose only way to type is the portal on the
/// bus at `address` (no wtype or ydotool on PATH, no X display), keeping its files in `data`.
pub fn type_on_wayland(
    bin: &str,
    address: &str,
    data: &std::path::Path,
    text: &str,
) -> std::process::Output {
    std::process::Command::new(bin)
        .args(["type", "--", text])
        .env("WAYLAND_DISPLAY", "wayland-test")
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .env("XDG_DATA_HOME", data)
        .env("PATH", "/nonexistent")
        .env_remove("DISPLAY")
        .output()
        .unwrap()
}

/// How the stand-in user answers the remote desktop's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Refuse,
}

#[derive(Clone)]
struct State {
    log: Arc<Mutex<Log>>,
    answer: Arc<Mutex<Answer>>,
    tokens: Arc<Mutex<u32>>,
}

/// The running stand-in portal.
pub struct MockPortal {
    state: State,
    connection: zbus::Connection,
}

fn text(options: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    options
        .get(key)
        .and_then(|v| String::try_from(v.clone()).ok())
}

fn number(options: &HashMap<String, OwnedValue>, key: &str) -> Option<u32> {
    options.get(key).and_then(|v| u32::try_from(v).ok())
}

fn sender(header: &Header<'_>) -> String {
    header.sender().map(ToString::to_string).unwrap_or_default()
}

/// `:1.42` → `1_42`, as the portal names objects after their caller.
fn caller_element(sender: &str) -> String {
    sender.trim_start_matches(':').replace('.', "_")
}

fn request_path(sender: &str, options: &HashMap<String, OwnedValue>) -> OwnedObjectPath {
    let token = text(options, "handle_token").unwrap_or_else(|| "t".to_owned());
    ObjectPath::try_from(format!("{PATH}/request/{}/{token}", caller_element(sender)))
        .unwrap()
        .into()
}

fn session_path(sender: &str, options: &HashMap<String, OwnedValue>) -> OwnedObjectPath {
    let token = text(options, "session_handle_token").unwrap_or_else(|| "s".to_owned());
    ObjectPath::try_from(format!("{PATH}/session/{}/{token}", caller_element(sender)))
        .unwrap()
        .into()
}

/// Runs a future to its end on this thread (zbus runs the connection on its own thread).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// Answers a request the way the portal does: a `Response` signal on the request's path, after
/// the method has returned its handle.
fn respond(
    connection: &zbus::Connection,
    to: &str,
    path: OwnedObjectPath,
    response: u32,
    results: HashMap<&'static str, Value<'static>>,
) {
    let connection = connection.clone();
    let to = to.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        block_on(connection.emit_signal(
            Some(to.as_str()),
            &path,
            "org.freedesktop.portal.Request",
            "Response",
            &(response, results),
        ))
        .unwrap();
    });
}

async fn new_session(
    state: &State,
    connection: &zbus::Connection,
    server: &zbus::ObjectServer,
    header: &Header<'_>,
    options: &HashMap<String, OwnedValue>,
) -> (OwnedObjectPath, OwnedObjectPath) {
    let who = sender(header);
    let request = request_path(&who, options);
    let session = session_path(&who, options);
    server
        .at(
            session.as_ref(),
            SessionObject {
                state: state.clone(),
                path: session.to_string(),
            },
        )
        .await
        .unwrap();
    let results = HashMap::from([("session_handle", Value::from(session.to_string()))]);
    respond(connection, &who, request.clone(), 0, results);
    (request, session)
}

struct SessionObject {
    state: State,
    path: String,
}

#[zbus::interface(name = "org.freedesktop.portal.Session")]
impl SessionObject {
    fn close(&self) {
        self.state
            .log
            .lock()
            .unwrap()
            .closed
            .push(self.path.clone());
    }
}

struct Registry(State);

#[zbus::interface(name = "org.freedesktop.host.portal.Registry")]
impl Registry {
    fn register(&self, app_id: String, _options: HashMap<String, OwnedValue>) {
        self.0.log.lock().unwrap().registered.push(app_id);
    }

    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }
}

struct Shortcuts(State);

#[zbus::interface(name = "org.freedesktop.portal.GlobalShortcuts")]
impl Shortcuts {
    async fn create_session(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(object_server)] server: &zbus::ObjectServer,
        #[zbus(header)] header: Header<'_>,
        options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let (request, session) = new_session(&self.0, connection, server, &header, &options).await;
        self.0.log.lock().unwrap().shortcut_session = Some((sender(&header), session.to_string()));
        request
    }

    fn bind_shortcuts(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(header)] header: Header<'_>,
        _session_handle: OwnedObjectPath,
        shortcuts: Vec<(String, HashMap<String, OwnedValue>)>,
        _parent_window: String,
        options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let who = sender(&header);
        let request = request_path(&who, &options);
        let mut bound = Vec::new();
        for (id, info) in shortcuts {
            let preferred = text(&info, "preferred_trigger");
            let description = text(&info, "description").unwrap_or_default();
            // The desktop takes the preferred trigger and describes it its own way.
            let trigger = preferred.clone().unwrap_or_default().replace('+', " + ");
            let info: HashMap<String, Value<'static>> = HashMap::from([
                ("description".to_owned(), Value::from(description)),
                ("trigger_description".to_owned(), Value::from(trigger)),
            ]);
            bound.push((id.clone(), info));
            self.0.log.lock().unwrap().shortcuts.push((id, preferred));
        }
        let results = HashMap::from([("shortcuts", Value::from(bound))]);
        respond(connection, &who, request.clone(), 0, results);
        request
    }

    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }
}

struct Remote(State);

#[zbus::interface(name = "org.freedesktop.portal.RemoteDesktop")]
impl Remote {
    async fn create_session(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(object_server)] server: &zbus::ObjectServer,
        #[zbus(header)] header: Header<'_>,
        options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let (request, session) = new_session(&self.0, connection, server, &header, &options).await;
        self.0
            .log
            .lock()
            .unwrap()
            .keyboards
            .push((sender(&header), session.to_string()));
        request
    }

    fn select_devices(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(header)] header: Header<'_>,
        _session_handle: OwnedObjectPath,
        options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let who = sender(&header);
        let request = request_path(&who, &options);
        self.0.log.lock().unwrap().selected.push((
            number(&options, "types"),
            number(&options, "persist_mode"),
            text(&options, "restore_token"),
        ));
        respond(connection, &who, request.clone(), 0, HashMap::new());
        request
    }

    fn start(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(header)] header: Header<'_>,
        _session_handle: OwnedObjectPath,
        _parent_window: String,
        options: HashMap<String, OwnedValue>,
    ) -> OwnedObjectPath {
        let who = sender(&header);
        let request = request_path(&who, &options);
        let answer = *self.0.answer.lock().unwrap();
        if answer == Answer::Refuse {
            // 1: the user cancelled the dialog.
            respond(connection, &who, request.clone(), 1, HashMap::new());
            return request;
        }
        let token = {
            let mut tokens = self.0.tokens.lock().unwrap();
            *tokens += 1;
            format!("mock-token-{tokens}")
        };
        self.0.log.lock().unwrap().started += 1;
        let results = HashMap::from([
            ("devices", Value::from(1u32)),
            ("restore_token", Value::from(token)),
        ]);
        respond(connection, &who, request.clone(), 0, results);
        request
    }

    fn notify_keyboard_keysym(
        &self,
        session_handle: OwnedObjectPath,
        _options: HashMap<String, OwnedValue>,
        keysym: i32,
        state: u32,
    ) -> zbus::fdo::Result<()> {
        let mut log = self.0.log.lock().unwrap();
        let path = session_handle.to_string();
        if log.revoked.contains(&path) || log.closed.contains(&path) {
            // As the portal answers a call on a session that is gone.
            log.refused += 1;
            return Err(zbus::fdo::Error::AccessDenied("Invalid session".to_owned()));
        }
        log.keys.push((keysym, state == 1));
        log.key_times.push(Instant::now());
        Ok(())
    }

    #[zbus(property, name = "AvailableDeviceTypes")]
    fn available_device_types(&self) -> u32 {
        7
    }

    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        2
    }
}

impl MockPortal {
    /// Serves the portal on the bus at `address`.
    pub fn start(address: &str) -> MockPortal {
        let state = State {
            log: Arc::default(),
            answer: Arc::new(Mutex::new(Answer::Allow)),
            tokens: Arc::default(),
        };
        let connection = block_on(
            zbus::connection::Builder::address(address)
                .unwrap()
                .serve_at(PATH, Registry(state.clone()))
                .unwrap()
                .serve_at(PATH, Shortcuts(state.clone()))
                .unwrap()
                .serve_at(PATH, Remote(state.clone()))
                .unwrap()
                .name("org.freedesktop.portal.Desktop")
                .unwrap()
                .build(),
        )
        .expect("the stand-in portal on the private bus");
        MockPortal { state, connection }
    }

    pub fn log(&self) -> Log {
        self.state.log.lock().unwrap().clone()
    }

    /// How the user answers the next request for a keyboard.
    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// Waits until `ready` holds for the log (or the time is up); the log.
    pub fn wait(&self, timeout: Duration, ready: impl Fn(&Log) -> bool) -> Log {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if ready(&log) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn shortcut_signal(&self, name: &str) {
        let (owner, session) = self
            .log()
            .shortcut_session
            .expect("no shortcut session to signal");
        let session = ObjectPath::try_from(session).unwrap();
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        block_on(self.connection.emit_signal(
            Some(owner.as_str()),
            PATH,
            "org.freedesktop.portal.GlobalShortcuts",
            name,
            &(
                session,
                "toggle-dictation",
                millis,
                HashMap::<String, Value<'_>>::new(),
            ),
        ))
        .unwrap();
    }

    /// The user stops the remote control in the desktop: every keyboard session ends (the
    /// portal sends `Closed` on each, and refuses keys sent to it from then on).
    pub fn end_keyboards(&self) {
        let sessions = {
            let mut log = self.state.log.lock().unwrap();
            let sessions = log.keyboards.clone();
            log.revoked
                .extend(sessions.iter().map(|(_, path)| path.clone()));
            sessions
        };
        for (owner, path) in sessions {
            block_on(self.connection.emit_signal(
                Some(owner.as_str()),
                path.as_str(),
                "org.freedesktop.portal.Session",
                "Closed",
                &HashMap::<String, Value<'_>>::new(),
            ))
            .unwrap();
        }
    }

    /// The user presses the shortcut (the desktop sends `Activated`).
    pub fn press(&self) {
        self.shortcut_signal("Activated");
    }

    /// The user lets go of it (`Deactivated`).
    pub fn release(&self) {
        self.shortcut_signal("Deactivated");
    }
}

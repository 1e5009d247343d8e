//! The desktop portals (xdg-desktop-portal) on Wayland, where a client can neither grab a key nor
//! send keys to another app: the global shortcut through `GlobalShortcuts` (its `Activated` and
//! `Deactivated` signals are the key going down and up) and typing into the focused app through
//! `RemoteDesktop`'s keyboard (one keysym press and release per character). GNOME and KDE
//! implement both, each asking the user once; wlroots compositors implement neither (there `wtype`
//! types, and the compositor's own key binding runs `lightning-dictate toggle`).
//!
//! The calls are async (zbus runs the connection on an executor thread of its own); each user of
//! the portal here drives them from a plain thread of its own with a small runtime.

use std::path::PathBuf;
use std::time::Duration;

use ashpd::desktop::global_shortcuts::{BindShortcutsOptions, GlobalShortcuts, NewShortcut};
use ashpd::desktop::remote_desktop::{
    DeviceType, KeyState, NotifyKeyboardKeysymOptions, RemoteDesktop, SelectDevicesOptions,
    StartOptions,
};
use ashpd::desktop::{CreateSessionOptions, PersistMode, Session};
use futures_util::StreamExt;

use super::{DesktopError, ShortcutEvent};
use crate::channel::Sink;

/// The app's id: the name of its `.desktop` file, which GNOME asks a host app to register
/// before it uses a portal (and keeps permissions under).
pub const APP_ID: &str = "dev.lightning_dictate.LightningDictate";

/// The id of our one global shortcut within the portal session.
pub const SHORTCUT_ID: &str = "toggle-dictation";

/// How long the portal gets to answer before it counts as absent (no dialog is shown before
/// this answer; D-Bus activation of the portal service may take a moment the first time).
const ANSWER: Duration = Duration::from_secs(5);

/// The file that keeps the remote desktop's restore token: with it, the desktop does not ask
/// again for a keyboard it already allowed (KDE keeps the permission only this way).
const TOKEN_FILE: &str = "portal-restore-token";

fn portal(e: impl std::fmt::Display) -> DesktopError {
    DesktopError::Portal(e.to_string())
}

/// An error from the portal, in words: an absent portal, a refusal by the user, the rest as is.
fn explain(interface: &str, e: &ashpd::Error) -> DesktopError {
    match e {
        ashpd::Error::PortalNotFound(_) => DesktopError::NoPortal(interface.to_owned()),
        ashpd::Error::Zbus(zbus_error) if absent(zbus_error) => {
            DesktopError::NoPortal(interface.to_owned())
        }
        ashpd::Error::Response(_) => DesktopError::PortalRefused(interface.to_owned()),
        other => portal(other),
    }
}

/// Whether a D-Bus error means there is no portal to ask (no session bus, no portal service,
/// or a portal without this interface).
fn absent(e: &ashpd::zbus::Error) -> bool {
    use ashpd::zbus::fdo::Error as Fdo;
    match e {
        ashpd::zbus::Error::InputOutput(_) | ashpd::zbus::Error::Address(_) => true,
        ashpd::zbus::Error::FDO(fdo) => matches!(
            **fdo,
            Fdo::ServiceUnknown(_)
                | Fdo::UnknownMethod(_)
                | Fdo::UnknownInterface(_)
                | Fdo::UnknownObject(_)
                | Fdo::NameHasNoOwner(_)
        ),
        ashpd::zbus::Error::MethodError(name, _, _) => {
            let name = name.as_str();
            name.ends_with("ServiceUnknown")
                || name.ends_with("UnknownMethod")
                || name.ends_with("UnknownInterface")
                || name.ends_with("UnknownObject")
                || name.ends_with("NameHasNoOwner")
        }
        _ => false,
    }
}

/// A runtime for one thread's portal calls.
fn runtime() -> Result<tokio::runtime::Runtime, DesktopError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(portal)
}

/// Tells the portal which app this process is (GNOME wants it before any other call from a
/// host app). Portals before xdg-desktop-portal 1.19 have no registry, and a second call on the
/// same connection is refused: neither matters.
async fn register() {
    let Ok(id) = APP_ID.parse::<ashpd::AppID>() else {
        return;
    };
    if let Err(e) = ashpd::register_host_app(id).await {
        tracing::debug!("portal registry: {e}");
    }
}

/// Our `ctrl+alt+space` in the XDG shortcuts notation the portal takes: `CTRL+ALT+space`.
pub fn trigger(keys: &str) -> String {
    keys.split('+')
        .map(|part| {
            let part = part.trim();
            match part.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => "CTRL".to_owned(),
                "alt" => "ALT".to_owned(),
                "shift" => "SHIFT".to_owned(),
                "super" | "win" | "meta" | "logo" => "LOGO".to_owned(),
                "enter" | "return" => "Return".to_owned(),
                "escape" | "esc" => "Escape".to_owned(),
                "tab" => "Tab".to_owned(),
                "space" => "space".to_owned(),
                f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                    f.to_ascii_uppercase()
                }
                other => other.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// The global shortcut as the desktop's portal holds it; dropping it closes the portal session
/// (the desktop releases the keys) and ends its thread.
pub struct PortalShortcut {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for PortalShortcut {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asks the desktop's portal for the global shortcut `keys` (the desktop may show a dialog to
/// confirm or change it). What it answered goes to `bound` once: the trigger as the desktop
/// describes it, or why there is none. Then presses and releases go to `events`.
pub fn bind_shortcut(
    keys: &str,
    events: Sink<ShortcutEvent>,
    bound: Sink<Result<String, String>>,
) -> Result<PortalShortcut, DesktopError> {
    let trigger = trigger(keys);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("portal-shortcut".to_owned())
        .spawn(move || {
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(e) => return bound.send(Err(e.to_string())),
            };
            runtime.block_on(async move {
                let why = match shortcut_session(&trigger).await {
                    Ok((portal, session, description)) => {
                        bound.send(Ok(description));
                        listen(&portal, &events, &bound, stopped).await;
                        let _ = session.close().await;
                        return;
                    }
                    Err(e) => e,
                };
                bound.send(Err(with_install_hint(&why)));
            });
        })
        .map_err(portal)?;
    Ok(PortalShortcut { stop: Some(stop) })
}

/// A GlobalShortcuts session with our shortcut bound; the trigger as the desktop describes it.
async fn shortcut_session(
    trigger: &str,
) -> Result<(GlobalShortcuts, Session<GlobalShortcuts>, String), DesktopError> {
    const INTERFACE: &str = "GlobalShortcuts";
    let (portal, session) = tokio::time::timeout(ANSWER, async {
        register().await;
        let portal = GlobalShortcuts::new().await?;
        let session = portal
            .create_session(CreateSessionOptions::default())
            .await?;
        Ok::<_, ashpd::Error>((portal, session))
    })
    .await
    .map_err(|_| DesktopError::NoPortal(INTERFACE.to_owned()))?
    .map_err(|e| explain(INTERFACE, &e))?;
    let shortcut =
        NewShortcut::new(SHORTCUT_ID, "Start or stop a dictation").preferred_trigger(Some(trigger));
    // No timeout from here: the desktop may be showing the user a dialog.
    let answer = portal
        .bind_shortcuts(&session, &[shortcut], None, BindShortcutsOptions::default())
        .await
        .and_then(|request| request.response())
        .map_err(|e| explain(INTERFACE, &e))?;
    let description = answer
        .shortcuts()
        .iter()
        .find(|s| s.id() == SHORTCUT_ID)
        .map(|s| s.trigger_description().to_owned())
        .ok_or_else(|| DesktopError::PortalRefused(INTERFACE.to_owned()))?;
    Ok((portal, session, description))
}

/// A refusal, when the app is not installed: GNOME wants a host app's `.desktop` file before
/// it lets it use a portal.
pub(super) fn with_install_hint(e: &DesktopError) -> String {
    match e {
        DesktopError::PortalRefused(_) | DesktopError::Portal(_)
            if !super::entry::is_installed() =>
        {
            format!(
                "{e} (the desktop may want the app installed first: `lightning-dictate install-desktop`)"
            )
        }
        _ => e.to_string(),
    }
}

/// Forwards our shortcut's activations (key down) and deactivations (key up) until `stopped`;
/// new keys the user gives it in the desktop's settings go to `bound`.
async fn listen(
    portal: &GlobalShortcuts,
    events: &Sink<ShortcutEvent>,
    bound: &Sink<Result<String, String>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let (Ok(activated), Ok(deactivated), Ok(mut changed)) = (
        portal.receive_activated().await,
        portal.receive_deactivated().await,
        portal.receive_shortcuts_changed().await,
    ) else {
        tracing::error!("the portal's shortcut signals cannot be received");
        return;
    };
    let ours = |id: &str| id == SHORTCUT_ID;
    let presses = activated
        .filter(move |a| std::future::ready(ours(a.shortcut_id())))
        .map(|_| ShortcutEvent::Pressed);
    let releases = deactivated
        .filter(move |d| std::future::ready(ours(d.shortcut_id())))
        .map(|_| ShortcutEvent::Released);
    let mut both = futures_util::stream::select(presses, releases);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            event = both.next() => match event {
                Some(event) => events.send(event),
                None => break,
            },
            Some(change) = changed.next() => {
                let ours = change.shortcuts().iter().find(|s| s.id() == SHORTCUT_ID);
                if let Some(shortcut) = ours {
                    bound.send(Ok(shortcut.trigger_description().to_owned()));
                }
            }
        }
    }
}

/// A keyboard lent by the desktop's RemoteDesktop portal: keys sent to it go to the app with
/// the focus, as if typed.
pub struct Keyboard {
    runtime: tokio::runtime::Runtime,
    portal: RemoteDesktop,
    session: Session<RemoteDesktop>,
}

impl Keyboard {
    /// Asks the desktop for a keyboard. The first time, the desktop asks the user; the token it
    /// gives back is kept (mode 0600) so that later runs are let through without asking.
    pub fn connect() -> Result<Keyboard, DesktopError> {
        let runtime = runtime()?;
        let (portal, session) = runtime.block_on(open())?;
        Ok(Keyboard {
            runtime,
            portal,
            session,
        })
    }

    /// Sends `keys` (keysym, pressed) in order. The first is waited for: if the desktop refuses
    /// it (it closed the session: the user stopped the remote control, or the desktop
    /// restarted), nothing was typed, and the keyboard is asked for again (with the kept token,
    /// silently if the desktop still allows it) and the keys sent once more. The rest go
    /// without waiting for their answers (a D-Bus connection delivers in order; a round trip per
    /// key took ~0.3 ms against a local portal, more through a desktop's), but for the last:
    /// its answer comes after every earlier key was handled, and says whether all went in.
    fn send(&mut self, keys: &[(u32, KeyState)]) -> Result<(), DesktopError> {
        let Some((&(first, first_state), _)) = keys.split_first() else {
            return Ok(());
        };
        if self.runtime.block_on(self.key(first, first_state)).is_err() {
            tracing::info!("the desktop's keyboard went away; asking for it again");
            let (portal, session) = self.runtime.block_on(open())?;
            let old = std::mem::replace(&mut self.session, session);
            self.portal = portal;
            let _ = self.runtime.block_on(old.close());
            self.runtime.block_on(self.key(first, first_state))?;
        }
        let Some((&(last, last_state), middle)) = keys[1..].split_last() else {
            return Ok(());
        };
        let (portal, session) = (&self.portal, &self.session);
        let failed = |e: ashpd::zbus::Error| explain("RemoteDesktop", &ashpd::Error::Zbus(e));
        self.runtime.block_on(async {
            for &(keysym, state) in middle {
                let options = NotifyKeyboardKeysymOptions::default();
                portal
                    .call_noreply(
                        "NotifyKeyboardKeysym",
                        &(session, options, keysym as i32, state),
                    )
                    .await
                    .map_err(failed)?;
            }
            self.key(last, last_state).await
        })
    }

    async fn key(&self, keysym: u32, state: KeyState) -> Result<(), DesktopError> {
        self.portal
            .notify_keyboard_keysym(
                &self.session,
                keysym as i32,
                state,
                NotifyKeyboardKeysymOptions::default(),
            )
            .await
            .map_err(|e| explain("RemoteDesktop", &e))
    }

    /// Types `text`, each character as its keysym pressed and released.
    pub fn type_text(&mut self, text: &str) -> Result<(), DesktopError> {
        let keys: Vec<_> = text
            .chars()
            .map(super::x11::keysym_of)
            .flat_map(|keysym| [(keysym, KeyState::Pressed), (keysym, KeyState::Released)])
            .collect();
        self.send(&keys)
    }

    /// Presses `keysyms` in order (e.g. Control, V) and releases them in reverse.
    pub fn press_combo(&mut self, keysyms: &[u32]) -> Result<(), DesktopError> {
        let presses = keysyms.iter().map(|&k| (k, KeyState::Pressed));
        let releases = keysyms.iter().rev().map(|&k| (k, KeyState::Released));
        let keys: Vec<_> = presses.chain(releases).collect();
        self.send(&keys)
    }
}

/// A RemoteDesktop session with the keyboard started (the desktop may ask the user; the kept
/// token is given back and the new one kept).
async fn open() -> Result<(RemoteDesktop, Session<RemoteDesktop>), DesktopError> {
    const INTERFACE: &str = "RemoteDesktop";
    let (portal, session) = tokio::time::timeout(ANSWER, async {
        register().await;
        let portal = RemoteDesktop::new().await?;
        let devices = portal.available_device_types().await?;
        let session = portal
            .create_session(CreateSessionOptions::default())
            .await?;
        Ok::<_, ashpd::Error>((portal, session, devices))
    })
    .await
    .map_err(|_| DesktopError::NoPortal(INTERFACE.to_owned()))?
    .map_err(|e| explain(INTERFACE, &e))
    .and_then(|(portal, session, devices)| {
        if devices.contains(DeviceType::Keyboard) {
            Ok((portal, session))
        } else {
            Err(DesktopError::NoPortal(INTERFACE.to_owned()))
        }
    })?;
    let token = load_token();
    let options = SelectDevicesOptions::default()
        .set_devices(ashpd::enumflags2::BitFlags::from(DeviceType::Keyboard))
        .set_persist_mode(PersistMode::ExplicitlyRevoked)
        .set_restore_token(token.as_deref());
    // No timeout from here: the desktop may be asking the user.
    let started = async {
        portal.select_devices(&session, options).await?.response()?;
        portal
            .start(&session, None, StartOptions::default())
            .await?
            .response()
    }
    .await
    .map_err(|e| explain(INTERFACE, &e))?;
    if let Some(token) = started.restore_token() {
        save_token(token);
    }
    if !started.devices().contains(DeviceType::Keyboard) {
        return Err(DesktopError::PortalRefused(INTERFACE.to_owned()));
    }
    Ok((portal, session))
}

impl Drop for Keyboard {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.session.close());
    }
}

fn token_path() -> Option<PathBuf> {
    Some(crate::paths::data_dir()?.join(TOKEN_FILE))
}

fn load_token() -> Option<String> {
    let text = std::fs::read_to_string(token_path()?).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Keeps the token for the next run, readable by this user only. A token not kept only means
/// the desktop asks again next time.
fn save_token(token: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(path) = token_path() else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(token.as_bytes()));
    if let Err(e) = written {
        tracing::warn!("the desktop's permission to type could not be kept: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_in_the_portal_notation() {
        assert_eq!(trigger("ctrl+alt+space"), "CTRL+ALT+space");
        assert_eq!(trigger("Super+D"), "LOGO+d");
        assert_eq!(trigger("ctrl+shift+f9"), "CTRL+SHIFT+F9");
        assert_eq!(trigger("alt+return"), "ALT+Return");
    }

    #[test]
    fn the_app_id_is_one_the_portal_takes() {
        assert!(APP_ID.parse::<ashpd::AppID>().is_ok());
    }
}

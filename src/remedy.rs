//! [`Remedy`]: what a user can do about an error, as a kind, not as words. Library errors say what
//! happened; each front end turns the remedy into its own advice ("pass --api-key" in a terminal,
//! "add your key in Settings" in the window). cpal splits an error's kind from its message the
//! same way.

/// What the user can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Give a valid API key.
    FixKey,
    /// Correct the service's address.
    CheckUrl,
    /// Check the address and the network, or run a local server.
    CheckNetwork,
    /// Change the language, encoding or sample rate.
    CheckParams,
    /// The service moved: use its current endpoint.
    UseCurrentEndpoint,
    /// Choose another input device (or reconnect this one).
    PickDevice,
    /// No input device at all: plug one in, or start the sound server.
    ConnectMicrophone,
    /// Install (or reinstall) the offline model, or name another one.
    FetchModel,
    /// Pick a multilingual offline model (the installed one is English-only).
    MultilingualModel,
    /// Nothing to change: try again later.
    RetryLater,
    /// The message says all there is.
    None,
}

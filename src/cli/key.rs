//! `key save | status | forget`: the API key in the OS keyring, from a terminal. The key is read
//! from standard input and never printed.

use clap::Subcommand;

use lightning_dictate::keystore;
use lightning_dictate::protocol::ApiKey;

use super::{exit, fail};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store a key: reads it from standard input (never from the command line).
    Save,
    /// Say whether a key is stored (never prints it).
    Status,
    /// Remove the stored key.
    Forget,
}

pub fn run(command: KeyCommand) -> u8 {
    let result = match command {
        KeyCommand::Save => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                return fail(
                    exit::USAGE,
                    format!("cannot read the key from standard input: {e}"),
                );
            }
            let Some(key) = ApiKey::new(&line) else {
                return fail(
                    exit::USAGE,
                    "no key on standard input: pipe it in, e.g. `lightning-dictate key save < keyfile`",
                );
            };
            keystore::save(&key).map(|()| "the key is stored in the system keyring".to_owned())
        }
        KeyCommand::Status => keystore::load().map(|key| match key {
            Some(_) => "a key is stored in the system keyring".to_owned(),
            None => "no key is stored in the system keyring".to_owned(),
        }),
        KeyCommand::Forget => {
            keystore::delete().map(|()| "no key is stored in the system keyring".to_owned())
        }
    };
    match result {
        Ok(message) => {
            println!("{message}");
            exit::OK
        }
        Err(e) => fail(exit::USAGE, e),
    }
}

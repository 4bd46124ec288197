//! Tokens for the commands that may change something through the verb socket: one per
//! command, at the level the policy (and, where asked, a person) allowed it, alive while the
//! command runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::policy::Class;

/// Tokens minted for the commands that may change something, each with the class it was
/// allowed at; a token lives as long as its command runs.
#[derive(Debug, Clone, Default)]
pub struct Grants(Arc<Mutex<HashMap<String, Class>>>);

impl Grants {
    /// A token for one command allowed at `class`; `None` for a read-only command, which
    /// needs none.
    pub fn mint(&self, class: Class) -> Option<Token> {
        if class <= Class::ReadOnly || class == Class::Denied {
            return None;
        }
        let token = format!(
            "{:016x}{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        self.lock().insert(token.clone(), class);
        Some(Token {
            grants: self.clone(),
            token,
        })
    }

    /// Whether `token` allows a call of `class` now.
    pub fn allows(&self, token: Option<&str>, class: Class) -> bool {
        if class <= Class::ReadOnly {
            return true;
        }
        if class == Class::Denied {
            return false;
        }
        token.is_some_and(|t| self.lock().get(t).is_some_and(|allowed| *allowed >= class))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Class>> {
        // A panic while holding it leaves a map that is still whole.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A minted token; revoked when dropped (its command ended).
#[derive(Debug)]
pub struct Token {
    grants: Grants,
    pub token: String,
}

impl std::ops::Drop for Token {
    fn drop(&mut self) {
        self.grants.lock().remove(&self.token);
    }
}

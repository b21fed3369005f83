//! Secret fields: AES-256-GCM with a PBKDF2-SHA256 (100,000 rounds) key, stored as
//! `base64(salt(16) ‖ iv(12) ‖ ciphertext ‖ tag(16))` (format.md §10).
//!
//! Keys are derived once per (passphrase, salt) and cached; a process encrypts with one
//! salt per passphrase and a fresh IV per value, so writes cost no key derivation.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A passphrase that never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(p: impl Into<String>) -> Self {
        Passphrase(p.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

pub const DEFAULT_PASSPHRASE: &str = "secret";
const ROUNDS: u32 = 100_000;
const CACHE_LIMIT: usize = 4096;

type CacheKey = ([u8; 32], [u8; 16]);

fn cache() -> &'static Mutex<HashMap<CacheKey, [u8; 32]>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, [u8; 32]>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn write_salts() -> &'static Mutex<HashMap<[u8; 32], [u8; 16]>> {
    static SALTS: OnceLock<Mutex<HashMap<[u8; 32], [u8; 16]>>> = OnceLock::new();
    SALTS.get_or_init(Default::default)
}

/// The derived key; the passphrase itself is never kept, only its digest as a cache key.
pub fn derive_key(passphrase: &str, salt: &[u8; 16]) -> [u8; 32] {
    let id: [u8; 32] = Sha256::digest(passphrase.as_bytes()).into();
    if let Some(k) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(id, *salt))
    {
        return *k;
    }
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt, ROUNDS, &mut key);
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    if c.len() >= CACHE_LIMIT {
        c.clear();
    }
    c.insert((id, *salt), key);
    key
}

pub fn encrypt(passphrase: &str, plaintext: &str) -> String {
    let id: [u8; 32] = Sha256::digest(passphrase.as_bytes()).into();
    let salt = *write_salts()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id)
        .or_insert_with(rand::random);
    let iv: [u8; 12] = rand::random();
    encrypt_with(passphrase, &salt, &iv, plaintext)
}

pub fn encrypt_with(passphrase: &str, salt: &[u8; 16], iv: &[u8; 12], plaintext: &str) -> String {
    let key = derive_key(passphrase, salt);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
    let ct = cipher
        .encrypt(Nonce::from_slice(iv), plaintext.as_bytes())
        .expect("AES-GCM encryption of a bounded buffer");
    let mut out = Vec::with_capacity(28 + ct.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(iv);
    out.extend_from_slice(&ct);
    STANDARD.encode(out)
}

pub fn decrypt(passphrase: &str, stored: &str) -> Result<String> {
    let bad = || {
        Error::new(
            crate::ErrorKind::Corrupt,
            "secret field does not decrypt with this passphrase",
        )
    };
    let raw = STANDARD.decode(stored).map_err(|_| bad())?;
    if raw.len() < 16 + 12 + 16 {
        return Err(bad());
    }
    let salt: [u8; 16] = raw[..16].try_into().expect("16 bytes");
    let key = derive_key(passphrase, &salt);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
    let plain = cipher
        .decrypt(Nonce::from_slice(&raw[16..28]), &raw[28..])
        .map_err(|_| bad())?;
    String::from_utf8(plain).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handmade_vector_from_the_spec() {
        let salt: [u8; 16] = core::array::from_fn(|i| i as u8);
        let iv: [u8; 12] = core::array::from_fn(|i| 0x10 + i as u8);
        let stored = encrypt_with("vector-passphrase", &salt, &iv, "hello secret");
        assert_eq!(
            stored,
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGyR5NDRrfCPWjTPlTHUPhUfGJeheCSji2UfxYRU="
        );
        assert_eq!(
            decrypt("vector-passphrase", &stored).unwrap(),
            "hello secret"
        );
        assert!(decrypt("wrong", &stored).is_err());
        let fresh = encrypt("p", "x");
        assert_ne!(fresh, encrypt("p", "x"), "fresh IV per value");
        assert_eq!(decrypt("p", &fresh).unwrap(), "x");
    }
}

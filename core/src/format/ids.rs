//! Record ids and the names that become parts of keys.

use crate::error::{Error, Result};

/// s3db.js's id alphabet (nanoid's URL alphabet).
pub const ID_ALPHABET: &str = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";
pub const DEFAULT_ID_SIZE: usize = 22;
pub const MAX_ID_BYTES: usize = 1024;

pub fn generate_id(size: usize) -> String {
    let alphabet: Vec<char> = ID_ALPHABET.chars().collect();
    nanoid::format(nanoid::rngs::default, &alphabet, size)
}

/// Ids, resource names and lock/sequence names become key segments.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if name.len() > MAX_ID_BYTES {
        return Err(Error::invalid(format!(
            "{what} is {} bytes, over the {MAX_ID_BYTES}-byte limit",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '=' | '%') || c.is_control())
    {
        return Err(Error::invalid(format!(
            "{what} {name:?} contains {c:?}; '/', '\\\\', '=', '%' and control characters are not allowed"
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid(format!("{what} must not be {name:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_use_the_alphabet() {
        let id = generate_id(DEFAULT_ID_SIZE);
        assert_eq!(id.chars().count(), 22);
        assert!(id.chars().all(|c| ID_ALPHABET.contains(c)));
        assert_ne!(id, generate_id(DEFAULT_ID_SIZE));
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["", "a/b", "a\\b", "a=b", "a%2F", "..", "x\ny"] {
            assert!(validate_name("id", bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("id", &"x".repeat(1025)).is_err());
        assert!(validate_name("id", &"x".repeat(1024)).is_ok());
        assert!(validate_name("id", "ok-id_1.2 é").is_ok());
    }
}

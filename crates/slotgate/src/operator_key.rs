//! The operator key: long and varied enough to resist guessing, given in
//! `SLOTGATE_OPERATOR_KEY`, or kept in the data directory's `operator.key`
//! (made there at the first start).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::auth::random_hex;
use crate::private_files;

/// Fewest characters an operator key may have.
pub const MIN_LEN: usize = 32;

/// Fewest distinct characters: `aaaa...` or `abababab...` is long but guessable.
pub const MIN_DISTINCT: usize = 8;

/// How to make a good key, said wherever a key is refused.
pub const HOW_TO_MAKE_ONE: &str =
    "make one with `openssl rand -hex 32` or `head -c 32 /dev/urandom | base64`";

/// Why a key is refused, without the key itself (it would end up in logs).
pub fn weakness(key: &str) -> Option<String> {
    let len = key.chars().count();
    if len < MIN_LEN {
        return Some(format!("it has {len} characters, fewer than {MIN_LEN}"));
    }
    let distinct = key.chars().collect::<HashSet<_>>().len();
    if distinct < MIN_DISTINCT {
        return Some(format!(
            "it has only {distinct} distinct characters, fewer than {MIN_DISTINCT}"
        ));
    }
    None
}

/// Where the embedded store keeps its operator key.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("operator.key")
}

/// The key saved in `dir`, if there is one.
pub fn saved(dir: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path(dir)) {
        Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes a new key and saves it in `dir` (0600).
pub fn generate(dir: &Path) -> io::Result<String> {
    let key = format!("sgo_{}", random_hex(24));
    private_files::write(&path(dir), format!("{key}\n").as_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_monotonous_keys_are_refused_and_generated_ones_pass() {
        assert!(weakness("a")
            .unwrap()
            .contains("1 characters, fewer than 32"));
        let monotonous = "ab".repeat(20);
        assert!(weakness(&monotonous).unwrap().contains("only 2 distinct"));
        assert_eq!(weakness("0123456789abcdef0123456789abcdef"), None);
        let dir = tempfile::tempdir().unwrap();
        let key = generate(dir.path()).unwrap();
        assert_eq!(weakness(&key), None);
        assert_eq!(saved(dir.path()).unwrap(), Some(key));
    }
}

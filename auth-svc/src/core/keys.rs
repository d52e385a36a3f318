//! The Ed25519 keys that sign and verify access tokens.
//!
//! A key's `kid` is derived from its public key, so the same file always has
//! the same `kid` and nothing else has to be configured to rotate: start
//! auth-svc with the new key as signing key and the old one in
//! `SMSOPS_AUTH_EXTRA_KEYS` until the old tokens have expired.

use std::path::{Path, PathBuf};

use aws_lc_rs::{
    digest,
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::EncodingKey;
use smsops_common::auth::PublicJwk;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not an Ed25519 PEM key: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot generate a key")]
    Generate,
}

/// The signing key and every public key that verifiers should accept.
pub struct KeyRing {
    signing_kid: String,
    signing: EncodingKey,
    public: Vec<PublicJwk>,
}

impl KeyRing {
    pub fn load(signing: &Path, extra: &[PathBuf]) -> Result<Self, KeyError> {
        let pem = read(signing)?;
        let (label, der) = parse_pem(&pem).map_err(|reason| invalid(signing, reason))?;
        if label != "PRIVATE KEY" {
            return Err(invalid(
                signing,
                "the signing key must be a PKCS#8 private key".into(),
            ));
        }
        let signing_public = public_of_private(&der).map_err(|reason| invalid(signing, reason))?;
        let signing_kid = kid(&signing_public);
        let mut public = vec![jwk(&signing_public)];
        for path in extra {
            let key = public_of_pem(&read(path)?).map_err(|reason| invalid(path, reason))?;
            if !public.iter().any(|known| known.kid == kid(&key)) {
                public.push(jwk(&key));
            }
        }
        Ok(Self {
            signing_kid,
            signing: EncodingKey::from_ed_der(&der),
            public,
        })
    }

    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    pub fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }

    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.public.clone()
    }
}

/// A new Ed25519 private key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, KeyError> {
    let document =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
    let body = STANDARD.encode(document.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

/// Writes a new key to `path` (owner-readable only), creating parent folders.
pub fn write_new_key(path: &Path) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    let pem = generate_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(write_err)?;
    std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(write_err)
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, reason: String) -> KeyError {
    KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    }
}

fn parse_pem(pem: &str) -> Result<(String, Vec<u8>), String> {
    let mut lines = pem.lines().map(str::trim).filter(|line| !line.is_empty());
    let first = lines.next().ok_or("empty file")?;
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"))
        .ok_or("missing PEM header")?
        .to_string();
    let end = format!("-----END {label}-----");
    let body: String = lines.take_while(|line| *line != end).collect();
    let der = STANDARD
        .decode(body)
        .map_err(|err| format!("bad base64: {err}"))?;
    Ok((label, der))
}

fn public_of_private(pkcs8: &[u8]) -> Result<Vec<u8>, String> {
    Ed25519KeyPair::from_pkcs8(pkcs8)
        .map(|pair| pair.public_key().as_ref().to_vec())
        .map_err(|err| format!("not an Ed25519 PKCS#8 key: {err}"))
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn public_of_pem(pem: &str) -> Result<Vec<u8>, String> {
    let (label, der) = parse_pem(pem)?;
    match label.as_str() {
        "PRIVATE KEY" => public_of_private(&der),
        "PUBLIC KEY" => der
            .strip_prefix(SPKI_ED25519_PREFIX.as_slice())
            .filter(|key| key.len() == 32)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "not an Ed25519 public key".to_string()),
        other => Err(format!("unexpected PEM label {other:?}")),
    }
}

fn kid(public: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, public);
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..12])
}

fn jwk(public: &[u8]) -> PublicJwk {
    PublicJwk {
        kid: kid(public),
        x: URL_SAFE_NO_PAD.encode(public),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_loads_with_a_stable_kid() {
        let dir = std::env::temp_dir().join(format!("smsops-keys-{}", uuid::Uuid::new_v4()));
        let path = dir.join("signing.pem");
        write_new_key(&path).unwrap();
        let first = KeyRing::load(&path, &[]).unwrap();
        let second = KeyRing::load(&path, std::slice::from_ref(&path)).unwrap();
        assert_eq!(first.signing_kid(), second.signing_kid());
        assert_eq!(second.public_keys().len(), 1);
        assert!(
            write_new_key(&path).is_err(),
            "an existing key is never overwritten"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn garbage_is_refused() {
        assert!(public_of_pem("hello").is_err());
        assert!(
            public_of_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
        );
    }
}

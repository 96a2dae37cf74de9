//! Ed25519 signing keys of the issuer and the key ring that rotates them.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use super::AuthError;
use super::claims::{PublicJwk, b64url};

/// One Ed25519 key: the private half for signing, the public half for the JWKS.
pub(crate) struct SigningKey {
    /// Key id: base64url of the first 12 bytes of SHA-256(public key) — stable, unguessable.
    pub(crate) kid: String,
    /// PKCS#8 document, as `jsonwebtoken` wants it.
    pub(crate) encoding: EncodingKey,
    /// Verification key, shared with verifiers in the same process.
    pub(crate) decoding: Arc<DecodingKey>,
    /// Public key, base64url (`x` of the JWK).
    pub(crate) x: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<Self, AuthError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| AuthError::Key("ed25519 generation failed".into()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Loads a PKCS#8 (v1 or v2) Ed25519 private key.
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| AuthError::Key(format!("not an ed25519 pkcs8 key: {e}")))?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = b64url(&Sha256::digest(&public)[..12]);
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: Arc::new(DecodingKey::from_ed_der(&public)),
            x: b64url(&public),
        })
    }

    /// The public JWK.
    pub(crate) fn jwk(&self) -> PublicJwk {
        PublicJwk::ed25519(self.x.clone(), Some(self.kid.clone()))
    }
}

/// Generates an Ed25519 key pair for event signing: (key pair, public key base64url).
pub(crate) fn ephemeral_ed25519() -> Result<(Ed25519KeyPair, String), AuthError> {
    let pair = Ed25519KeyPair::generate()
        .map_err(|_| AuthError::Key("ed25519 generation failed".into()))?;
    let x = b64url(pair.public_key().as_ref());
    Ok((pair, x))
}

//! Bearer tokens as identity providers issue them, minted in the test: HS256 with a shared
//! secret, RS256 with the test-only key in `tests/fixtures/` (its public half is the JWKS
//! there). Each suite picks its own secret, so a token of one suite never verifies in another.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

/// The test-only RSA private key; `fixtures/jwks.json` holds its public key as kid `test-1`.
const RSA_PEM: &[u8] = include_bytes!("../fixtures/jwt-test-only-rsa.pem");

/// `Bearer <HS256 token of claims>`, signed with `secret`.
pub fn hs256(claims: &Value, secret: &[u8]) -> String {
    let token = encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 token");
    format!("Bearer {token}")
}

/// `Bearer <RS256 token of claims>`, signed with the test-only key and naming `kid`.
pub fn rs256(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_rsa_pem(RSA_PEM).expect("the test-only key");
    format!(
        "Bearer {}",
        encode(&header, claims, &key).expect("RS256 token")
    )
}

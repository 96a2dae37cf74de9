//! Unit tests of validation and password generation.

use super::generate_password;
use super::model::{check_email, check_password, normalize_email};

#[test]
fn generated_passwords_are_long_random_and_url_safe() {
    let a = generate_password().unwrap();
    let b = generate_password().unwrap();
    assert_eq!(a.len(), 24);
    assert_ne!(a, b);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    check_password("password", &a).unwrap();
}

#[test]
fn emails() {
    for ok in ["a@b", "a.b+c@example.com", " Ada@Example.COM "] {
        check_email("email", ok).unwrap();
    }
    for bad in [
        "", "a", "@b", "a@", "a b@c", "a@b..c", "a@.b", "a@b@c", "a\u{7}@b",
    ] {
        assert!(check_email("email", bad).is_err(), "{bad:?}");
    }
    assert_eq!(normalize_email(" Ada@Example.COM "), "ada@example.com");
}

#[test]
fn passwords() {
    assert!(check_password("password", "short").is_err());
    assert!(check_password("password", &"x".repeat(257)).is_err());
    assert!(check_password("password", "long enough\u{0}").is_err());
    check_password("password", "long enough").unwrap();
}

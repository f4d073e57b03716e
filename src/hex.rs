//! Bytes as lowercase hex: SHA-256 checksums in the manifest, compile-cache keys, and
//! the md5s dbt names long tests with and `local_md5` gives. A table lookup per byte: the manifest of 10,000 models holds
//! about 50,000 checksums.

/// `bytes` as lowercase hex, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

/// The md5 of `text` in hex, as Python's `hashlib.md5(text).hexdigest()` (dbt's).
pub fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    hex(&Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_lowercase_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
        assert_eq!(super::md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
    }
}

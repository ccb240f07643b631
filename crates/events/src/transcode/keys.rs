//! The key cache: each key of a log converted once, then copied. A direct-mapped table, so a
//! lookup is one comparison and hostile input cannot grow it.

use super::Transcoder;
use crate::key::Case;

/// Slots of the key cache, per case.
pub const KEY_SLOTS: usize = 512;

/// One cached key: as read, and converted as escaped JSON (quotes included).
#[derive(Debug)]
pub(super) struct Slot {
    source: Box<[u8]>,
    converted: Box<[u8]>,
}

/// The cache slot of `key`: its length and its first and last eight bytes, mixed. Keys of
/// one log tend to share a length and a prefix and differ in a few bytes (`Flag01Enabled`,
/// `Flag02Enabled`), which sixteen bytes nearly always cover.
fn slot_of(key: &[u8], case: Case) -> usize {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let n = key.len();
    let head = word(&key[..n.min(8)]);
    let tail = word(&key[n.saturating_sub(8)..]);
    let h = (head ^ tail.rotate_left(29) ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let i = (h >> 40) as usize % KEY_SLOTS;
    match case {
        Case::Camel => i,
        Case::Pascal => KEY_SLOTS + i,
    }
}

impl Transcoder {
    /// Writes `key` converted to `case`, as a JSON string.
    pub(super) fn write_key(&mut self, out: &mut Vec<u8>, key: &str, case: Case) {
        let b = key.as_bytes();
        let i = slot_of(b, case);
        if let Some(slot) = &self.cache[i] {
            if *slot.source == *b {
                out.extend_from_slice(&slot.converted);
                return;
            }
        }
        let start = out.len();
        case.write(out, key);
        self.cache[i] = Some(Slot {
            source: b.into(),
            converted: out[start..].into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_alike_but_for_a_digit_get_their_own_cache_slots() {
        let slots: std::collections::HashSet<usize> = (0..40)
            .map(|k| slot_of(format!("Flag{k:02}Enabled").as_bytes(), Case::Pascal))
            .collect();
        assert!(slots.len() >= 36, "{} distinct slots", slots.len());
    }

    #[test]
    fn the_cache_gives_what_a_miss_computes() {
        let mut tc = Transcoder::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            tc.write_key(&mut out, "IPAddress", Case::Camel);
            tc.write_key(&mut out, "FirstName", Case::Camel);
            assert_eq!(out, br#""ipAddress""firstName""#);
        }
    }
}

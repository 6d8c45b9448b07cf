//! A number that must be at least 1, for config values (limits, timeouts, connection
//! and stream caps): 0 is refused when the file is parsed, so no later code checks it.

use serde::Deserialize;

/// A number that must be at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64", bound(deserialize = "T: TryFrom<u64>"))]
pub struct Positive<T>(pub T);

impl<T: TryFrom<u64>> TryFrom<u64> for Positive<T> {
    type Error = &'static str;

    fn try_from(n: u64) -> std::result::Result<Self, &'static str> {
        if n == 0 {
            return Err("must be at least 1");
        }
        T::try_from(n).map(Positive).map_err(|_| "too large")
    }
}

impl<T: PartialEq> PartialEq<T> for Positive<T> {
    fn eq(&self, other: &T) -> bool {
        self.0 == *other
    }
}

impl<T: Copy> Positive<T> {
    pub fn get(self) -> T {
        self.0
    }
}

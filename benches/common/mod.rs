//! What the benches share.

use vaultgate::sensitive::luhn;
use vaultgate::sensitive::{DataClass, Sensitive};

/// The `n`-th distinct Luhn-valid test card number on the 424242 test BIN.
pub fn card(n: u64) -> Sensitive {
    let body = format!("424242{:09}", n % 1_000_000_000);
    Sensitive::parse(
        DataClass::Pan,
        &format!("{body}{}", luhn::check_digit(&body)),
    )
    .unwrap_or_else(|_| unreachable!("a 16-digit number is a card number"))
}

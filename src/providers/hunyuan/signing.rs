//! TC3-HMAC-SHA256 (Tencent Cloud "Signature v3"): a pure function of (credentials, service,
//! timestamp, request).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "TC3-HMAC-SHA256";
const SIGNED_HEADERS: &str = "content-type;host";

type HmacSha256 = Hmac<Sha256>;

/// What of the request the signature covers.
pub(super) struct Tc3Request<'a> {
    pub(super) host: &'a str,
    pub(super) content_type: &'a str,
    pub(super) payload: &'a [u8],
}

#[derive(Debug)]
pub(super) struct Tc3Signature {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) canonical_request: String,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) string_to_sign: String,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) signature: String,
    pub(super) authorization: String,
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp (proleptic Gregorian civil-from-days).
pub(super) fn utc_date(timestamp: u64) -> String {
    let days = (timestamp / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

pub(super) fn tc3_sign(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: u64,
    req: &Tc3Request<'_>,
) -> Tc3Signature {
    let canonical_headers = format!(
        "content-type:{}\nhost:{}\n",
        req.content_type.trim().to_ascii_lowercase(),
        req.host.trim().to_ascii_lowercase()
    );
    // API 3.0: canonical URI is always "/", the canonical query string is "" for POST.
    let canonical_request = format!(
        "POST\n/\n\n{canonical_headers}\n{SIGNED_HEADERS}\n{}",
        sha256_hex(req.payload)
    );
    let date = utc_date(timestamp);
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    );
    Tc3Signature {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

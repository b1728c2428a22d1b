//! Counters of what a server did and refused, for operators and tests.

/// Counters of what the server did and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Frames received.
    pub frames: u64,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Signed frames whose signature did not verify.
    pub forged: u64,
    /// Signed frames with an already used sequence number.
    pub replayed: u64,
    /// Signed frames naming no live session.
    pub unknown_session: u64,
    /// Inputs for ticks too far ahead.
    pub out_of_window: u64,
    /// Frames over a link's rate limit.
    pub rate_limited: u64,
    /// Signed frames for a session that speaks from another link.
    pub wrong_link: u64,
    /// Proofs of no current challenge (wrong or expired nonce).
    pub bad_proof: u64,
    /// Links dropped for misbehaving.
    pub peers_dropped: u64,
    /// Links refused because their address had too many open.
    pub links_refused: u64,
    /// Links closed because they held no seat for the join deadline.
    pub links_idle: u64,
    /// Joins refused because their address opened too many matches in the last minute.
    pub matches_refused: u64,
    /// Joins refused because the named room was full or playing.
    pub joins_room_full: u64,
    /// Joins refused because the server hosted `max_matches`.
    pub joins_server_full: u64,
    /// Joins refused because the server was draining.
    pub joins_draining: u64,
    /// Joins refused as invalid (a match size out of 2–4).
    pub joins_bad_request: u64,
    /// Resyncs beyond a seat's resend budget, answered with a keyframe (or nothing, while
    /// keyframes are rate-limited too) instead of the ticks asked for.
    pub resends_limited: u64,
    /// Matches created.
    pub matches_created: u64,
    /// Matches finished.
    pub matches_finished: u64,
    /// Ticks simulated, over all matches.
    pub ticks: u64,
    /// Grid ticks skipped because the server fell behind.
    pub overruns: u64,
    /// Times a running match paused for a lost member.
    pub pauses: u64,
    /// Members who forfeited (left a started match, or lost past the grace period).
    pub forfeits: u64,
    /// Resync requests answered (ticks resent or a keyframe).
    pub resyncs: u64,
    /// Lobbies closed because they did not fill in time.
    pub lobbies_expired: u64,
}

//! Records ⇄ rows of the `events` table: one row per record, except that consecutive ticks
//! of a match within one batch share a row (10 bytes a tick), which keeps a server with many
//! matches at a few rows per match per batch. Every row carries a checksum, so a damaged
//! row is reported, never read as another record.

use pong_domain::hash::Fnv64;
use pong_domain::journal::Record;
use pong_domain::sim::TickInput;

/// `kind` of a row holding a run of ticks.
pub(crate) const KIND_TICKS: i64 = 100;
/// Bytes a tick takes in a run: packed intents, forfeits, hash (little-endian).
const TICK_BYTES: usize = 10;

/// `kind` of a row holding one record (not a tick).
pub(crate) fn kind_of(r: &Record) -> i64 {
    match r {
        Record::Created { .. } => 1,
        Record::Joined { .. } => 2,
        Record::Left { .. } => 3,
        Record::CountdownStarted => 4,
        Record::CountdownCancelled => 5,
        Record::Started => 6,
        Record::Tick { .. } => 7,
        Record::Lost { .. } => 8,
        Record::Back { .. } => 9,
        Record::Paused { .. } => 10,
        Record::Resuming => 11,
        Record::Forfeit { .. } => 12,
        Record::Over { .. } => 13,
        Record::Closed => 14,
        Record::Restored { .. } => 15,
    }
}

/// One row of `events`, without its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) kind: i64,
    pub(crate) tick: u32,
    pub(crate) count: u32,
    pub(crate) body: Vec<u8>,
}

impl Row {
    /// A row for one record that is not a tick; `tick` is the match's last tick so far.
    pub(crate) fn record(r: &Record, tick: u32) -> Result<Row, String> {
        let body = postcard::to_allocvec(r).map_err(|e| format!("cannot encode a record: {e}"))?;
        Ok(Row { kind: kind_of(r), tick, count: 1, body })
    }

    /// An empty run of ticks starting at `first`.
    pub(crate) fn ticks(first: u32) -> Row {
        Row { kind: KIND_TICKS, tick: first, count: 0, body: Vec::with_capacity(16 * TICK_BYTES) }
    }

    /// The tick a run expects next.
    pub(crate) fn next_tick(&self) -> u32 {
        self.tick.wrapping_add(self.count)
    }

    /// Adds a tick to a run.
    pub(crate) fn push_tick(&mut self, input: &TickInput, hash: u64) {
        self.body.push(input.packed_intents());
        self.body.push(input.forfeit);
        self.body.extend_from_slice(&hash.to_le_bytes());
        self.count += 1;
    }

    /// The checksum of this row as the row `seq` of match `match_id`.
    pub(crate) fn checksum(&self, match_id: u32, seq: u64) -> i64 {
        let mut h = Fnv64::new();
        h.u32(match_id);
        h.bytes(&seq.to_le_bytes());
        h.bytes(&self.kind.to_le_bytes());
        h.u32(self.tick);
        h.u32(self.count);
        h.bytes(&self.body);
        i64::from_le_bytes(h.finish().to_le_bytes())
    }

    /// The records of this row, appended to `out`. The checksum is checked first.
    pub(crate) fn decode(
        &self,
        match_id: u32,
        seq: u64,
        checksum: i64,
        out: &mut Vec<Record>,
    ) -> Result<(), String> {
        if self.checksum(match_id, seq) != checksum {
            return Err(format!("row {seq} of m{match_id} fails its checksum"));
        }
        if self.kind == KIND_TICKS {
            if self.body.len() != self.count as usize * TICK_BYTES || self.count == 0 {
                return Err(format!(
                    "row {seq} of m{match_id}: a run of {} ticks in {} bytes",
                    self.count,
                    self.body.len()
                ));
            }
            for (i, t) in self.body.chunks_exact(TICK_BYTES).enumerate() {
                let intents = TickInput::unpack_intents(t[0])
                    .ok_or_else(|| format!("row {seq} of m{match_id}: invalid intents"))?;
                let mut hash = [0u8; 8];
                hash.copy_from_slice(&t[2..]);
                out.push(Record::Tick {
                    tick: self.tick.wrapping_add(i as u32),
                    input: TickInput { intents, forfeit: t[1] },
                    hash: u64::from_le_bytes(hash),
                });
            }
            return Ok(());
        }
        let (record, rest) = postcard::take_from_bytes::<Record>(&self.body)
            .map_err(|e| format!("row {seq} of m{match_id} does not decode: {e}"))?;
        if !rest.is_empty()
            || kind_of(&record) != self.kind
            || self.count != 1
            || matches!(record, Record::Tick { .. })
        {
            return Err(format!("row {seq} of m{match_id} is not the record its kind says"));
        }
        out.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use pong_domain::sim::Intent;

    use super::*;

    #[test]
    fn a_run_of_ticks_round_trips_and_damage_is_caught() {
        let mut row = Row::ticks(41);
        let inputs = [
            TickInput {
                intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus],
                forfeit: 0,
            },
            TickInput { intents: [Intent::Stop; 4], forfeit: 0b100 },
        ];
        for (i, input) in inputs.iter().enumerate() {
            assert_eq!(row.next_tick(), 41 + i as u32);
            row.push_tick(input, 0xdead_beef_0000 + i as u64);
        }
        let sum = row.checksum(7, 3);
        let mut out = Vec::new();
        row.decode(7, 3, sum, &mut out).unwrap();
        assert_eq!(out[1], Record::Tick { tick: 42, input: inputs[1], hash: 0xdead_beef_0001 });
        // Another place, another byte, another length: all refused.
        assert!(row.decode(7, 4, sum, &mut Vec::new()).is_err());
        assert!(row.decode(8, 3, sum, &mut Vec::new()).is_err());
        let mut bad = row.clone();
        bad.body[5] ^= 1;
        assert!(bad.decode(7, 3, sum, &mut Vec::new()).is_err());
        let mut bad = row.clone();
        bad.body.pop();
        let sum = bad.checksum(7, 3);
        assert!(bad.decode(7, 3, sum, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_record_row_must_be_its_kind() {
        let row = Row::record(&Record::Paused { tick: 9 }, 9).unwrap();
        let mut out = Vec::new();
        row.decode(1, 0, row.checksum(1, 0), &mut out).unwrap();
        assert_eq!(out, vec![Record::Paused { tick: 9 }]);
        let lying = Row { kind: kind_of(&Record::Resuming), ..row };
        assert!(lying.decode(1, 0, lying.checksum(1, 0), &mut Vec::new()).is_err());
    }
}

//! A bare protocol session for benchmark clients: join, keep the token, sign messages. No
//! prediction, no clock sync: what a load generator or a ping probe needs and nothing more.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use pong_domain::codec;
use pong_domain::proto::{
    Join, MatchId, Name, OpenMsg, ServerMsg, SessionId, SessionMsg, Signed, Token, Welcome,
};
use pong_domain::rules::PlayerId;
use pong_ports::{ClientTransport, Connector};

/// A seated player's link and credentials.
pub struct Session {
    /// The link to the server.
    pub link: Box<dyn ClientTransport>,
    /// The session id.
    pub session: SessionId,
    /// The session's secret.
    pub token: Token,
    /// The match it is seated in.
    pub match_id: MatchId,
    /// Its seat.
    pub player: PlayerId,
    seq: u32,
    buf: Vec<u8>,
}

/// Encodes a `Join` for a match of `players` (the server's default if `None`).
///
/// # Errors
/// An invalid name.
pub fn join_frame(name: &str, players: Option<u8>) -> Result<Bytes> {
    let join = Join { name: Name::new(name).context("player name")?, players, room: None };
    let mut buf = Vec::with_capacity(64);
    codec::encode_open(&OpenMsg::Join(join), &mut buf)?;
    Ok(Bytes::from(buf))
}

impl Session {
    /// Connects, sends `Join`, and waits for the `Welcome` (skipping anything else).
    ///
    /// # Errors
    /// No link, a refusal, or the link closed first.
    pub async fn join(
        connector: &dyn Connector,
        name: &str,
        players: Option<u8>,
    ) -> Result<Session> {
        let link = connector.connect().await.context("connect")?;
        link.send(join_frame(name, players)?).context("send Join")?;
        Session::await_welcome(link).await
    }

    /// Waits on `link` for a `Welcome` (after a `Join` was sent on it).
    ///
    /// # Errors
    /// A refusal, or the link closed first.
    pub async fn await_welcome(mut link: Box<dyn ClientTransport>) -> Result<Session> {
        loop {
            let frame = link.recv().await.context("waiting for Welcome")?;
            match codec::decode_server(&frame) {
                Ok(ServerMsg::Welcome(w)) => return Ok(Session::welcomed(link, &w)),
                Ok(ServerMsg::Rejected(r)) => bail!("the server refused: {r}"),
                Ok(ServerMsg::Closed(r)) => bail!("the server closed the link: {r}"),
                _ => {}
            }
        }
    }

    /// A session from its `Welcome`.
    pub fn welcomed(link: Box<dyn ClientTransport>, w: &Welcome) -> Session {
        Session {
            link,
            session: w.session,
            token: w.token,
            match_id: w.match_id,
            player: w.player,
            seq: 0,
            buf: Vec::with_capacity(64),
        }
    }

    /// Takes a new seat (after a match ended) from the `Welcome` that answered a new `Join`.
    pub fn reseat(&mut self, w: &Welcome) {
        if w.session != self.session {
            // A new session: its replay window starts afresh.
            self.seq = 0;
        }
        self.session = w.session;
        self.token = w.token;
        self.match_id = w.match_id;
        self.player = w.player;
    }

    /// Encodes `msg` as the next signed message of this session.
    ///
    /// # Errors
    /// Only if the message does not fit a frame (none of the session messages can fail).
    pub fn sign(&mut self, msg: &SessionMsg) -> Result<Bytes> {
        self.seq = self.seq.wrapping_add(1);
        let header = Signed { session: self.session, seq: self.seq };
        codec::encode_signed(header, msg, &self.token, &mut self.buf)?;
        Ok(Bytes::copy_from_slice(&self.buf))
    }

    /// Signs `msg` and sends it.
    ///
    /// # Errors
    /// The link refused the frame (closed).
    pub fn send(&mut self, msg: &SessionMsg) -> Result<()> {
        let frame = self.sign(msg)?;
        self.link.send(frame)?;
        Ok(())
    }
}

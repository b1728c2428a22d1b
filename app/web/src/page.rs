//! The browser around the [`Game`]: the WebSocket, one timer for the core's deadlines, the
//! animation frame that draws, the keyboard, touch, the page's two buttons, and the result
//! put where scripts read it (`window.pongResult`, `<pre id="pong-result">`).
//!
//! Network and drawing are separate on purpose: frames are handled in the socket's message
//! event and what the core queues goes out at once; the timer follows the core's next
//! deadline; `requestAnimationFrame` only draws. So a slow or hidden tab's frame rate never
//! paces the network (the mistake issue 15 found in the window client).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{ArrayBuffer, Uint8Array};
use pong_presentation::controls::Key;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    BinaryType, CanvasRenderingContext2d, CloseEvent, Document, HtmlCanvasElement, HtmlElement,
    KeyboardEvent, MessageEvent, TouchEvent, UrlSearchParams, WebSocket, Window,
};

use crate::draw::{self, Extras, Painter};
use crate::game::{Command, Game};
use crate::layout::Layout;
use crate::params::Params;

/// The socket of one link and the handlers that must live as long as it.
struct Socket {
    id: u32,
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// The page's state, shared by every event handler.
struct Page {
    window: Window,
    document: Document,
    game: Game,
    url: String,
    socket: Option<Socket>,
    /// Sockets closed from inside one of their own handlers: dropped later, from the
    /// animation frame, since a handler must not be freed while it runs.
    retired: Vec<Socket>,
    timer: Option<(i32, u64)>,
    on_timer: Option<Closure<dyn FnMut()>>,
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    layout: Option<Layout>,
    published: bool,
    frames: f64,
    lobby_seen: bool,
}

type Shared = Rc<RefCell<Page>>;

fn now(window: &Window) -> u64 {
    // performance.now() is in milliseconds since the page opened, monotonic.
    window.performance().map_or(0, |p| (p.now() * 1000.0) as u64)
}

/// Starts the page: reads the link, opens the socket, starts drawing.
///
/// # Errors
/// When the page lacks what it is built around (a window, the canvas).
pub(crate) fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let canvas: HtmlCanvasElement =
        document.get_element_by_id("pong").ok_or("no #pong canvas")?.dyn_into()?;
    let ctx: CanvasRenderingContext2d =
        canvas.get_context("2d")?.ok_or("no 2D context")?.dyn_into()?;
    let search = UrlSearchParams::new_with_str(&window.location().search()?)?;
    let mut pairs = Vec::new();
    for entry in js_sys::try_iter(&search)?.ok_or("query not iterable")? {
        let entry: js_sys::Array = entry?.dyn_into()?;
        pairs.push((
            entry.get(0).as_string().unwrap_or_default(),
            entry.get(1).as_string().unwrap_or_default(),
        ));
    }
    let params = match Params::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(p) => p,
        Err(e) => {
            show_error(&document, &format!("This link cannot be played: {e}"));
            return Ok(());
        }
    };
    let location = window.location();
    let scheme = if location.protocol()? == "https:" { "wss:" } else { "ws:" };
    let url = format!("{scheme}//{}/", location.host()?);
    let game = Game::new(params, now(&window));
    let page = Rc::new(RefCell::new(Page {
        window: window.clone(),
        document: document.clone(),
        game,
        url,
        socket: None,
        retired: Vec::new(),
        timer: None,
        on_timer: None,
        canvas,
        ctx,
        layout: None,
        published: false,
        frames: 0.0,
        lobby_seen: false,
    }));
    let weak = Rc::downgrade(&page);
    page.borrow_mut().on_timer = Some(Closure::new(move || {
        if let Some(page) = weak.upgrade() {
            let t = now(&page.borrow().window);
            page.borrow_mut().timer = None;
            page.borrow_mut().game.on_timer(t);
            pump(&page);
        }
    }));
    listen_keys(&page)?;
    listen_touch(&page)?;
    listen_buttons(&page)?;
    animate(&page)?;
    let t = now(&window);
    page.borrow_mut().game.on_timer(t);
    pump(&page);
    Ok(())
}

fn show_error(document: &Document, message: &str) {
    if let Some(e) = document.get_element_by_id("pong-error") {
        e.set_text_content(Some(message));
        if let Ok(e) = e.dyn_into::<HtmlElement>() {
            let _ = e.style().set_property("display", "block");
        }
    }
}

/// Carries out what the game asks, publishes the result, and sets the timer to the game's
/// next deadline.
fn pump(page: &Shared) {
    let commands = page.borrow_mut().game.take_commands();
    for command in commands {
        match command {
            Command::Send(frame) => {
                if let Some(s) = &page.borrow().socket {
                    // A failed send means the socket is closing; its close event follows.
                    let _ = s.ws.send_with_u8_array(&frame);
                }
            }
            Command::Close => retire(&mut page.borrow_mut()),
            Command::Dial(id) => dial(page, id),
        }
    }
    publish(page);
    let mut p = page.borrow_mut();
    let wake = p.game.next_wake();
    let current = p.timer.map(|(_, at)| at);
    if wake != current {
        if let Some((handle, _)) = p.timer.take() {
            p.window.clear_timeout_with_handle(handle);
        }
        if let (Some(at), Some(cb)) = (wake, p.on_timer.as_ref()) {
            let delay = at.saturating_sub(now(&p.window)).div_ceil(1000);
            let delay = i32::try_from(delay).unwrap_or(i32::MAX);
            if let Ok(handle) = p.window.set_timeout_with_callback_and_timeout_and_arguments_0(
                cb.as_ref().unchecked_ref(),
                delay,
            ) {
                p.timer = Some((handle, at));
            }
        }
    }
}

/// Closes the current socket, if any, and silences it; its handlers are dropped later.
fn retire(p: &mut Page) {
    if let Some(s) = p.socket.take() {
        s.ws.set_onopen(None);
        s.ws.set_onmessage(None);
        s.ws.set_onclose(None);
        // Closing a socket that is already closing or closed does nothing.
        let _ = s.ws.close();
        p.retired.push(s);
    }
}

fn dial(page: &Shared, id: u32) {
    retire(&mut page.borrow_mut());
    let url = page.borrow().url.clone();
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            let t = now(&page.borrow().window);
            let why = e.as_string().unwrap_or_else(|| "the browser refused the address".into());
            page.borrow_mut().game.on_close(id, t, Some(why));
            return pump(page);
        }
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let handler = |f: Box<dyn FnMut(JsValue)>| Closure::wrap(f);
    let weak = Rc::downgrade(page);
    let on_open = handler(Box::new(move |_| {
        if let Some(page) = weak.upgrade() {
            let t = now(&page.borrow().window);
            page.borrow_mut().game.on_open(id, t);
            pump(&page);
        }
    }));
    let weak = Rc::downgrade(page);
    let on_message = handler(Box::new(move |e: JsValue| {
        let Some(page) = weak.upgrade() else { return };
        let Ok(e) = e.dyn_into::<MessageEvent>() else { return };
        // The server sends binary frames only; anything else is not ours to read.
        let Ok(buf) = e.data().dyn_into::<ArrayBuffer>() else { return };
        let bytes = Uint8Array::new(&buf).to_vec();
        let t = now(&page.borrow().window);
        let before = page.borrow().game.core().confirmed().map(|s| s.tick);
        page.borrow_mut().game.on_frame(id, t, &bytes);
        pump(&page);
        watch_confirmed(&page.borrow(), before);
    }));
    let weak = Rc::downgrade(page);
    let on_close = handler(Box::new(move |e: JsValue| {
        let Some(page) = weak.upgrade() else { return };
        let why = e.dyn_into::<CloseEvent>().ok().and_then(|c| {
            let reason = c.reason();
            (!reason.is_empty() || c.code() != 1006).then(|| format!("{} {reason}", c.code()))
        });
        let t = now(&page.borrow().window);
        let mut p = page.borrow_mut();
        p.game.on_close(id, t, why);
        if p.socket.as_ref().is_some_and(|s| s.id == id) {
            retire(&mut p);
        }
        drop(p);
        pump(&page);
    }));
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    page.borrow_mut().socket =
        Some(Socket { id, ws, _handlers: vec![on_open, on_message, on_close] });
}

/// Puts the finished match's summary where scripts read it, once.
fn publish(page: &Shared) {
    let mut p = page.borrow_mut();
    if p.published {
        return;
    }
    let Some(report) = p.game.result() else { return };
    let Ok(json) = serde_json::to_string(report) else { return };
    p.published = true;
    if let Ok(value) = js_sys::JSON::parse(&json) {
        let _ = js_sys::Reflect::set(&p.window, &"pongResult".into(), &value);
    }
    if let Some(pre) = p.document.get_element_by_id("pong-result") {
        pre.set_text_content(Some(&json));
    }
}

fn listen(
    target: &web_sys::EventTarget,
    kind: &str,
    f: impl FnMut(JsValue) + 'static,
) -> Result<(), JsValue> {
    let closure = Closure::<dyn FnMut(JsValue)>::new(f);
    target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())?;
    // Lives as long as the page.
    closure.forget();
    Ok(())
}

fn listen_keys(page: &Shared) -> Result<(), JsValue> {
    let window = page.borrow().window.clone();
    for (kind, down) in [("keydown", true), ("keyup", false)] {
        let page = page.clone();
        listen(&window, kind, move |e| {
            let Ok(e) = e.dyn_into::<KeyboardEvent>() else { return };
            let t = now(&page.borrow().window);
            let code = e.code();
            if let Some(key) = Key::from_dom_code(&code) {
                // The arrows would scroll the page.
                e.prevent_default();
                if !e.repeat() {
                    page.borrow_mut().game.on_key(key, down, t);
                }
            } else if down && !e.repeat() {
                let finished = page.borrow().game.core().is_finished()
                    || page.borrow().game.status().gave_up.is_some();
                match code.as_str() {
                    "Escape" => page.borrow_mut().game.leave(t),
                    "KeyR" | "Enter" if finished => page.borrow_mut().game.retry(t),
                    _ => return,
                }
                page.borrow_mut().published = false;
            }
            pump(&page);
        })?;
    }
    // A hidden tab stops drawing and its timers slow down; coming back, the game catches up
    // at once rather than at the next throttled timer.
    let document = page.borrow().document.clone();
    let p = page.clone();
    listen(&document, "visibilitychange", move |_| {
        let t = now(&p.borrow().window);
        p.borrow_mut().game.on_timer(t);
        pump(&p);
    })
}

fn listen_touch(page: &Shared) -> Result<(), JsValue> {
    let canvas = page.borrow().canvas.clone();
    for kind in ["touchstart", "touchmove", "touchend", "touchcancel"] {
        let page = page.clone();
        listen(&canvas, kind, move |e| {
            let Ok(e) = e.dyn_into::<TouchEvent>() else { return };
            let t = now(&page.borrow().window);
            let target = {
                let p = page.borrow();
                let touch = e.touches().get(0);
                match (touch, p.game.core().player(), p.layout.as_ref()) {
                    (Some(touch), Some(me), Some(layout)) => Some(layout.along(
                        me.side(),
                        f64::from(touch.client_x()),
                        f64::from(touch.client_y()),
                    )),
                    _ => None,
                }
            };
            page.borrow_mut().game.on_finger(target, t);
            pump(&page);
        })?;
    }
    Ok(())
}

fn listen_buttons(page: &Shared) -> Result<(), JsValue> {
    let document = page.borrow().document.clone();
    if let Some(again) = document.get_element_by_id("pong-again") {
        let page = page.clone();
        listen(&again, "click", move |_| {
            let t = now(&page.borrow().window);
            page.borrow_mut().game.retry(t);
            page.borrow_mut().published = false;
            pump(&page);
        })?;
    }
    if let Some(copy) = document.get_element_by_id("pong-copy") {
        let page = page.clone();
        listen(&copy, "click", move |_| {
            let p = page.borrow();
            let Some(query) = p.game.params().room_query() else { return };
            let location = p.window.location();
            let (Ok(origin), Ok(path)) = (location.origin(), location.pathname()) else { return };
            let link = format!("{origin}{path}{query}");
            // The promise fails without a secure context or permission; the link is also
            // shown beside the button, to copy by hand.
            let _ = p.window.navigator().clipboard().write_text(&link);
            if let Some(b) = p.document.get_element_by_id("pong-copy") {
                b.set_text_content(Some("Link copied"));
            }
        })?;
    }
    Ok(())
}

/// Draws every animation frame; also shows or hides the page's buttons and counts frames
/// (`window.pongFrames`, for the frame-rate benchmark).
fn animate(page: &Shared) -> Result<(), JsValue> {
    let next: Rc<RefCell<Option<Closure<dyn FnMut()>>>> = Rc::new(RefCell::new(None));
    let again = next.clone();
    let shared = page.clone();
    *again.borrow_mut() = Some(Closure::new(move || {
        {
            let mut p = shared.borrow_mut();
            p.retired.clear();
            draw_frame(&mut p);
        }
        let p = shared.borrow();
        if let Some(cb) = next.borrow().as_ref() {
            let _ = p.window.request_animation_frame(cb.as_ref().unchecked_ref());
        }
    }));
    let p = page.borrow();
    if let Some(cb) = again.borrow().as_ref() {
        p.window.request_animation_frame(cb.as_ref().unchecked_ref())?;
    }
    Ok(())
}

fn draw_frame(p: &mut Page) {
    let window = &p.window;
    let css_w = window.inner_width().ok().and_then(|v| v.as_f64()).unwrap_or(800.0);
    let css_h = window.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(600.0);
    let ratio = window.device_pixel_ratio().max(1.0);
    // Whole device pixels, so lines stay sharp.
    let (dev_w, dev_h) = ((css_w * ratio).round() as u32, (css_h * ratio).round() as u32);
    if p.canvas.width() != dev_w || p.canvas.height() != dev_h {
        p.canvas.set_width(dev_w);
        p.canvas.set_height(dev_h);
    }
    let _ = p.ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    p.layout = p.game.core().rules().map(|r| Layout::new(r, css_w, css_h));
    let t = now(window);
    let painter = Painter::new(p.ctx.clone(), css_w, css_h);
    let server = p.url.clone();
    draw::frame(&painter, &p.game, t, &Extras { server: &server, layout: p.layout.as_ref() });
    p.frames += 1.0;
    let _ = js_sys::Reflect::set(window, &"pongFrames".into(), &p.frames.into());
    let phase = phase_name(p.game.core().phase());
    let _ = js_sys::Reflect::set(window, &"pongPhase".into(), &phase.into());
    if phase == "lobby" && !p.lobby_seen {
        // Since the page was opened (performance.now's origin): the load benchmark's figure.
        p.lobby_seen = true;
        let _ = js_sys::Reflect::set(window, &"pongLobbyMs".into(), &(t as f64 / 1000.0).into());
    }
    publish_view(p, t);
    let core = p.game.core();
    let show_copy = matches!(core.phase(), pong_domain::client::ClientPhase::Lobby(_))
        && p.game.params().room.is_some();
    let show_again = core.is_finished() || p.game.status().gave_up.is_some();
    for (id, show) in [("pong-copy", show_copy), ("pong-again", show_again)] {
        if let Some(e) =
            p.document.get_element_by_id(id).and_then(|e| e.dyn_into::<HtmlElement>().ok())
        {
            let want = if show { "block" } else { "none" };
            if e.style().get_property_value("display").ok().as_deref() != Some(want) {
                let _ = e.style().set_property("display", want);
            }
        }
    }
}

/// Tells a script that asked (`window.pongOnConfirmed = (tick, paddles) => …`) of each new
/// confirmed state the moment the frame that made it arrived: the input-latency benchmark
/// times another player's move by it, without waiting for a drawn frame.
fn watch_confirmed(p: &Page, before: Option<u32>) {
    let Some(state) = p.game.core().confirmed() else { return };
    if before == Some(state.tick) {
        return;
    }
    let Ok(f) = js_sys::Reflect::get(&p.window, &"pongOnConfirmed".into()) else { return };
    let Ok(f) = f.dyn_into::<js_sys::Function>() else { return };
    let paddles: js_sys::Array = state.paddles.iter().map(|&x| JsValue::from(x)).collect();
    // A failing script is the script's business, not the game's.
    let _ = f.call2(&JsValue::NULL, &state.tick.into(), &paddles);
}

/// What this frame drew of the match, for scripts (`window.pongView`): the tick, the own
/// paddle's position (arena units), whether it moves up and down, and the seat.
fn publish_view(p: &Page, now: u64) {
    let core = p.game.core();
    let (Some(me), Some(view)) = (core.player(), core.view_with_intent(now)) else { return };
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"tick".into(), &view.tick.into());
    let _ = js_sys::Reflect::set(&o, &"own".into(), &view.paddles[me.index()].into());
    let _ = js_sys::Reflect::set(&o, &"vertical".into(), &me.side().is_vertical().into());
    let _ = js_sys::Reflect::set(&o, &"seat".into(), &me.get().into());
    let _ = js_sys::Reflect::set(&p.window, &"pongView".into(), &o);
}

/// The phase's name, for scripts that wait for one (`window.pongPhase`).
fn phase_name(phase: &pong_domain::client::ClientPhase) -> &'static str {
    use pong_domain::client::ClientPhase as P;
    match phase {
        P::Connecting => "connecting",
        P::Joining => "joining",
        P::Lobby(_) => "lobby",
        P::Countdown { .. } => "countdown",
        P::Playing => "playing",
        P::Paused(_) => "paused",
        P::Over { .. } => "over",
        P::Rejected(_) => "rejected",
        P::Closed(_) => "closed",
        P::Left => "left",
    }
}

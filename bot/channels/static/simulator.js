// The simulator page: post what the simulated person writes, poll for what comes back.
"use strict";

const API = "/simulator/api/messages";
const POLL_MS = 1000;
const GSM7 = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const GSM7_EXT = new Set("^{}\\[~]|€\f");

const $ = (id) => document.getElementById(id);
const state = { channel: "sms", address: "", language: "", after: 0, timer: null, busy: false };

// Segments of an SMS the person types (the service reports its own replies' segments).
function smsSize(text) {
  const chars = Array.from(text);
  const gsm = chars.every((c) => GSM7.has(c) || GSM7_EXT.has(c));
  const units = gsm ? chars.reduce((n, c) => n + (GSM7_EXT.has(c) ? 2 : 1), 0)
                    : text.length; // UTF-16 code units
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  return { encoding: gsm ? "GSM-7" : "UCS-2", units, segments };
}

function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

function timeOf(iso) {
  const at = iso ? new Date(iso) : new Date();
  return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function showError(message) { $("status").textContent = message || ""; }

function addBubble(who, text, meta, extraClass) {
  const item = document.createElement("li");
  item.className = `msg ${who}` + (extraClass ? ` ${extraClass}` : "");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  if (meta) {
    const small = document.createElement("span");
    small.className = "meta";
    small.textContent = meta;
    item.append(small);
  }
  $("log").append(item);
  $("log").scrollTop = $("log").scrollHeight; // scroll the chat, not the page
  return item;
}

function addReply(message) {
  let meta = timeOf(message.time);
  if (state.channel === "sms" && message.segments) {
    meta += ` · ${plural(message.segments, "segment", "segments")} (${message.encoding})`;
  }
  if (message.parts > 1) meta += ` · part ${message.part} of ${message.parts}`;
  const item = addBubble("them", message.text, meta);
  if (message.choices && message.choices.length) {
    const keyboard = document.createElement("div");
    keyboard.className = "keyboard";
    keyboard.setAttribute("role", "group");
    keyboard.setAttribute("aria-label", "Reply buttons");
    for (const choice of message.choices) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = choice.label;
      button.addEventListener("click", () => press(choice));
      keyboard.append(button);
    }
    item.insertBefore(keyboard, item.querySelector(".meta"));
  }
}

async function api(method, url, body) {
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new Error("The service does not answer. Is `concorder serve` still running?");
  }
  let data = {};
  try { data = await response.json(); } catch (error) { /* not JSON: use the status */ }
  if (!response.ok) throw new Error(data.error || `The service answered ${response.status}.`);
  return data;
}

async function poll() {
  if (!state.address || state.busy) return;
  state.busy = true;
  try {
    const query = new URLSearchParams({
      channel: state.channel, address: state.address, after: String(state.after) });
    const asked = query.toString();
    const data = await api("GET", `${API}?${query}`);
    const now = new URLSearchParams({
      channel: state.channel, address: state.address, after: String(state.after) });
    if (now.toString() !== asked) return; // the conversation changed meanwhile
    for (const message of data.messages) {
      addReply(message);
      state.after = Math.max(state.after, message.seq);
    }
    $("pending").hidden = !data.pending;
    if ($("status").dataset.fromPoll) { showError(""); delete $("status").dataset.fromPoll; }
  } catch (error) {
    showError(error.message);
    $("status").dataset.fromPoll = "1";
  } finally {
    state.busy = false;
  }
}

async function post(payload, bubbleText, bubbleClass) {
  showError("");
  try {
    await api("POST", API, {
      channel: state.channel, address: state.address, language: state.language, ...payload });
    addBubble("me", bubbleText, timeOf(), bubbleClass);
    $("pending").hidden = false;
    poll();
    return true;
  } catch (error) {
    showError(error.message);
    return false;
  }
}

function press(choice) {
  post({ button: choice.data, text: "" }, `Pressed “${choice.label}”`, "press");
}

function updateCounter() {
  const text = $("composer-text").value;
  if (!text) { $("counter").textContent = ""; return; }
  if (state.channel === "sms") {
    const size = smsSize(text);
    $("counter").textContent =
      `${text.length} characters · ${plural(size.segments, "segment", "segments")} (${size.encoding})`;
  } else {
    $("counter").textContent = `${text.length} characters`;
  }
}

function openConversation() {
  const form = $("setup");
  state.channel = form.elements.channel.value;
  describeAddress();
  state.address = $("address").value.trim();
  state.language = $("language").value;
  state.after = 0;
  $("log").replaceChildren();
  document.querySelector(".phone").classList.toggle("telegram", state.channel === "telegram");
  $("chat-title").textContent = state.address
    ? `${state.channel === "sms" ? "SMS with" : "Telegram chat"} ${state.address}`
    : "Conversation";
  localStorage.setItem("simulator", JSON.stringify(
    { channel: state.channel, address: state.address, language: state.language }));
  showError("");
  updateCounter();
  poll();
}

function describeAddress() {
  const sms = $("setup").elements.channel.value === "sms";
  $("address-label").textContent = sms ? "Phone number" : "Telegram chat id";
  $("address-hint").textContent = sms
    ? "Any number in international form, such as +447700900123."
    : "A number, such as 100001.";
}

function channelChanged() {
  const sms = $("setup").elements.channel.value === "sms";
  $("address").value = sms ? "+447700900123" : "100001";
  openConversation();
}

async function loadConfig() {
  let config = { channels: ["sms", "telegram"], languages: [{ code: "en", name: "English" }],
                 default_language: "en" };
  try { config = await api("GET", "/simulator/api/config"); } catch (error) {
    showError(error.message);
  }
  const select = $("language");
  for (const language of config.languages) {
    select.append(new Option(language.name, language.code));
  }
  select.value = config.default_language;
  for (const radio of $("setup").elements.channel) {
    const simulated = config.channels.includes(radio.value);
    radio.disabled = !simulated;
    radio.parentElement.title = simulated ? "" : "A real account is configured for this channel";
  }
  // A link may name the conversation: /simulator?channel=telegram&address=100001&language=fr
  const params = new URLSearchParams(location.search);
  const linked = params.get("channel") && { channel: params.get("channel"),
    address: params.get("address") || "", language: params.get("language") || "" };
  const saved = linked || JSON.parse(localStorage.getItem("simulator") || "null");
  if (saved && config.channels.includes(saved.channel)) {
    $("setup").elements.channel.value = saved.channel;
    $("address").value = saved.address;
    if (config.languages.some((l) => l.code === saved.language)) select.value = saved.language;
  } else if (config.channels.length && !config.channels.includes("sms")) {
    $("setup").elements.channel.value = config.channels[0];
    $("address").value = "100001";
  }
  if (config.kept_apart) {
    document.querySelector(".intro").textContent = "A real channel is configured. The people " +
      "you play here are simulated: they are kept apart from real participants and " +
      "organisers, and nothing they are sent reaches a real phone or chat.";
  }
  if (!config.channels.length) {
    showError("Every channel has a real account configured: the simulator is off.");
    return;
  }
  openConversation();
}

// The demo's guided tour (only when `concorder serve` runs the bundled example): the
// visitor joins as an invited citizen, and between their steps the page offers the
// organisers' next step, run by the service itself.
const TOUR = "/simulator/api/demo";
const TOUR_POLL_MS = 3000;
const tour = { on: false, stage: "", working: false };

function showTour(data) {
  tour.on = true;
  $("tour").hidden = false;
  const labels = data.labels || {};
  $("tour-title").textContent = labels.title || "Guided tour";
  $("tour-join-title").textContent = labels.join || "";
  $("join-sms").textContent = labels.sms || "SMS";
  $("join-telegram").textContent = labels.telegram || "Telegram";
  $("tour-next-title").textContent = labels.next || "";
  $("tour-busy").textContent = labels.working || "…";
  if ($("tour-says").textContent !== data.says) $("tour-says").textContent = data.says;
  $("tour-join").hidden = data.stage !== "join";
  $("tour-next").hidden = !data.action;
  if (data.action) {
    $("tour-why").textContent = data.action.why;
    $("tour-act").textContent = data.action.label;
    $("tour-act").dataset.step = data.action.step;
  }
  const visitor = data.visitor;
  $("setup").hidden = Boolean(visitor); // the tour is the visitor's own conversation
  if (visitor && (visitor.channel !== state.channel || visitor.address !== state.address)) {
    $("language").value = visitor.language; // the tour speaks the visitor's language
    $("setup").elements.channel.value = visitor.channel;
    $("address").value = visitor.address;
    openConversation();
  }
  tour.stage = data.stage;
}

async function tourCall(method, url, body) {
  if (tour.working) return;
  tour.working = true;
  const posting = method !== "GET"; // a look every few seconds must not move the focus
  if (posting) {
    for (const button of $("tour").querySelectorAll("button")) button.disabled = true;
    $("tour-busy").hidden = false;
    $("tour-error").textContent = "";
  }
  try {
    showTour(await api(method, url, body));
    poll();
  } catch (error) {
    $("tour-error").textContent = error.message;
  } finally {
    tour.working = false;
    if (posting) {
      $("tour-busy").hidden = true;
      for (const button of $("tour").querySelectorAll("button")) button.disabled = false;
    }
  }
}

async function loadTour() {
  const query = new URLSearchParams({ language: $("language").value || "en" });
  try {
    let data = await api("GET", `${TOUR}?${query}`);
    if (data.visitor && data.visitor.language !== query.get("language")) {
      query.set("language", data.visitor.language); // a visitor back on another browser
      data = await api("GET", `${TOUR}?${query}`);
    }
    showTour(data);
  } catch (error) {
    return; // no demo: an assembly is configured
  }
  setInterval(() => {
    if (!tour.working) tourCall("GET", `${TOUR}?${new URLSearchParams({ language: $("language").value })}`);
  }, TOUR_POLL_MS);
}

function join(event) {
  const channel = event.currentTarget.dataset.channel;
  tourCall("POST", `${TOUR}/join`, { channel, language: $("language").value });
}

function act() {
  const step = $("tour-act").dataset.step;
  tourCall("POST", `${TOUR}/steps`, { step, language: $("language").value }).then(() => {
    $("tour-says").focus(); // where the news is, for a keyboard or screen reader user
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("join-sms").addEventListener("click", join);
  $("join-telegram").addEventListener("click", join);
  $("tour-act").addEventListener("click", act);
  $("language").addEventListener("change", () => {
    if (tour.on) tourCall("GET", `${TOUR}?${new URLSearchParams({ language: $("language").value })}`);
  });
  $("setup").addEventListener("submit", (event) => { event.preventDefault(); openConversation(); });
  for (const radio of $("setup").elements.channel) radio.addEventListener("change", channelChanged);
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("composer-text");
    const text = box.value;
    if (!text.trim()) return;
    if (await post({ text }, text)) { box.value = ""; updateCounter(); }
    box.focus();
  });
  $("composer-text").addEventListener("input", updateCounter);
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  loadConfig().then(loadTour);
  state.timer = setInterval(poll, POLL_MS);
});

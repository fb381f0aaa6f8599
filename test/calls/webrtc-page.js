// The browser half of the WebRTC test, as a web app would write it: one RTCPeerConnection with the TURN servers from
// turnServers and iceTransportPolicy "relay", a data channel, and hooks the test process bridges to its SDK client
// (window.vgSendIce is exposed by the test; everything else the test calls through page.evaluate).
window.__name = (f) => f; // tsx/esbuild keepNames helper, in case a function arrives from the test process
window.peer = {
  pc: null,
  channel: null,
  received: [],
  errors: [],
  setup(iceServers, initiator) {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: "relay" });
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate) window.vgSendIce(JSON.stringify(e.candidate.toJSON()));
    };
    pc.onicecandidateerror = (e) => this.errors.push({ code: e.errorCode, text: e.errorText });
    const wire = (ch) => {
      ch.binaryType = "arraybuffer";
      ch.onmessage = (e) => this.received.push(Array.from(new Uint8Array(e.data)));
      this.channel = ch;
    };
    if (initiator) wire(pc.createDataChannel("bytes"));
    else pc.ondatachannel = (e) => wire(e.channel);
  },
  async offer() {
    const o = await this.pc.createOffer();
    await this.pc.setLocalDescription(o);
    return o.sdp;
  },
  async acceptOffer(sdp) {
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    const a = await this.pc.createAnswer();
    await this.pc.setLocalDescription(a);
    return a.sdp;
  },
  async acceptAnswer(sdp) {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
  },
  async addIce(candidates) {
    for (const c of candidates) await this.pc.addIceCandidate(c);
  },
  isOpen() {
    return this.channel !== null && this.channel.readyState === "open";
  },
  send(bytes) {
    this.channel.send(new Uint8Array(bytes));
  },
  /** The candidate types of the pair the connection uses. */
  async selectedPair() {
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return { local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol, bytesSent: pair.bytesSent };
  },
  close() {
    if (this.pc) this.pc.close();
  },
  /** Gathers with these servers alone (no call): how many relay candidates came, and the errors. */
  async gatherOnly(iceServers) {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: "relay" });
    const relays = [];
    const errors = [];
    pc.onicecandidateerror = (e) => errors.push(e.errorCode);
    const done = new Promise((resolve) => {
      pc.onicecandidate = (e) => (e.candidate ? relays.push(e.candidate.candidate) : resolve());
      setTimeout(resolve, 15000);
    });
    pc.createDataChannel("probe");
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    pc.close();
    return { relays, errors };
  },
};

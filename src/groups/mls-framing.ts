// What the delivery service reads of MLS bytes (RFC 9420) with ts-mls: key packages, the public framing of commits
// and application messages, and GroupInfo with its ratchet tree. It checks public material only; it holds no group
// secret and decrypts nothing. Every failure here is the client's fault: BAD_USER_INPUT, never a crash.
import { createHash } from "node:crypto";
import {
  decodeMlsMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type CiphersuiteImpl,
  type CiphersuiteName,
  type GroupInfo,
  type KeyPackage,
  type MLSMessage,
  type PublicMessage,
  type RatchetTree,
} from "ts-mls";
import { verifyFramedContentSignature } from "ts-mls/framedContent.js";
import { ratchetTreeFromExtension, verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import { encodeKeyPackage, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignature, verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { treeHashRoot } from "ts-mls/treeHash.js";
import { badInput } from "../errors.ts";

/** Ciphersuite 1 (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519) is the one every client must speak. */
export const ALLOWED_CIPHERSUITES: readonly CiphersuiteName[] = ["MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"];

const impls = new Map<CiphersuiteName, Promise<CiphersuiteImpl>>();
function suite(name: CiphersuiteName): Promise<CiphersuiteImpl> {
  if (!ALLOWED_CIPHERSUITES.includes(name)) throw badInput(`ciphersuite ${name} is not accepted`);
  let impl = impls.get(name);
  if (!impl) impls.set(name, (impl = getCiphersuiteImpl(getCiphersuiteFromName(name))));
  return impl;
}

type Wire<W extends MLSMessage["wireformat"]> = Extract<MLSMessage, { wireformat: W }>;

/** Decodes one whole MLSMessage of the expected wire format; trailing bytes or anything else is refused. */
export function decodeWire<W extends MLSMessage["wireformat"]>(bytes: Uint8Array, wireformat: W, field: string): Wire<W> {
  let decoded: [MLSMessage, number] | undefined;
  try {
    decoded = decodeMlsMessage(bytes, 0);
  } catch {
    decoded = undefined;
  }
  if (!decoded || decoded[1] !== bytes.length) throw badInput(`${field} is not a TLS-encoded MLSMessage`);
  const [msg] = decoded;
  if (msg.version !== "mls10") throw badInput(`${field}: unsupported MLS version`);
  if (msg.wireformat !== wireformat) throw badInput(`${field} must be a ${wireformat}, not a ${msg.wireformat}`);
  return msg as Wire<W>;
}

export interface DeviceRef {
  userId: string;
  deviceId: number;
}

const IDENTITY = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([1-9][0-9]{0,2})$/;

/** The device a basic credential names ("<userId>.<deviceId>"), or null. */
export function credentialDevice(credential: { credentialType: string; identity?: Uint8Array }): DeviceRef | null {
  if (credential.credentialType !== "basic" || !credential.identity) return null;
  const m = IDENTITY.exec(Buffer.from(credential.identity).toString("utf8"));
  return m ? { userId: m[1], deviceId: Number(m[2]) } : null;
}

export const deviceKey = (d: DeviceRef) => `${d.userId}.${d.deviceId}`;

/** SHA-256 of the TLS-encoded KeyPackage: the same bytes whether it arrived alone or inside an Add proposal. */
export function keyPackageRef(kp: KeyPackage): Uint8Array<ArrayBuffer> {
  return new Uint8Array(createHash("sha256").update(encodeKeyPackage(kp)).digest());
}

export interface CheckedKeyPackage {
  ref: Uint8Array<ArrayBuffer>;
  notAfter: Date;
}

/** A key package the uploading device may publish: allowed suite, valid signature, current lifetime, its own name. */
export async function checkKeyPackage(bytes: Uint8Array, owner: DeviceRef, field: string, now = new Date()): Promise<CheckedKeyPackage> {
  const { keyPackage: kp } = decodeWire(bytes, "mls_key_package", field);
  const cs = await suite(kp.cipherSuite).catch(() => {
    throw badInput(`${field}: ciphersuite ${kp.cipherSuite} is not accepted`);
  });
  const named = credentialDevice(kp.leafNode.credential);
  if (!named || deviceKey(named) !== deviceKey(owner)) {
    throw badInput(`${field}: the credential must be a basic credential naming this device ("<userId>.<deviceId>")`);
  }
  if (kp.leafNode.leafNodeSource !== "key_package") throw badInput(`${field}: the leaf node is not a key package leaf`);
  const seconds = BigInt(Math.floor(now.getTime() / 1000));
  const { notBefore, notAfter } = kp.leafNode.lifetime;
  if (notBefore > seconds || notAfter < seconds) throw badInput(`${field}: the lifetime is not current`);
  if (!(await verifyKeyPackage(kp, cs.signature).catch(() => false))) throw badInput(`${field}: bad signature`);
  const notAfterMs = Number(notAfter > 8_000_000_000_000n ? 8_000_000_000_000n : notAfter) * 1000;
  return { ref: keyPackageRef(kp), notAfter: new Date(Math.min(notAfterMs, 8.64e15)) };
}

export interface ParsedCommit {
  message: PublicMessage;
  groupId: Uint8Array;
  epoch: bigint;
  senderLeaf: number;
  /** Refs of the key packages the Add proposals carry. */
  addedKeyPackages: { ref: Uint8Array<ArrayBuffer>; device: DeviceRef | null }[];
  removedLeaves: number[];
}

/** The public framing of a commit: a PublicMessage from a member, holding proposals by value. */
export function parseCommit(bytes: Uint8Array): ParsedCommit {
  const { publicMessage } = decodeWire(bytes, "mls_public_message", "commit");
  const { content } = publicMessage;
  if (content.contentType !== "commit") throw badInput("commit must carry a Commit, not " + content.contentType);
  if (content.sender.senderType !== "member") throw badInput("commit must come from a member of the group");
  const addedKeyPackages: ParsedCommit["addedKeyPackages"] = [];
  const removedLeaves: number[] = [];
  for (const p of content.commit.proposals) {
    if (p.proposalOrRefType !== "proposal") throw badInput("commit proposals must be sent by value, not by reference");
    const proposal = p.proposal;
    if (proposal.proposalType === "add") {
      addedKeyPackages.push({
        ref: keyPackageRef(proposal.add.keyPackage),
        device: credentialDevice(proposal.add.keyPackage.leafNode.credential),
      });
    } else if (proposal.proposalType === "remove") {
      removedLeaves.push(proposal.remove.removed);
    } else if (proposal.proposalType !== "update") {
      throw badInput(`commit proposal ${String(proposal.proposalType)} is not accepted by this delivery service`);
    }
  }
  return {
    message: publicMessage,
    groupId: content.groupId,
    epoch: content.epoch,
    senderLeaf: content.sender.leafIndex,
    addedKeyPackages,
    removedLeaves,
  };
}

export interface ParsedGroupInfo {
  info: GroupInfo;
  groupId: Uint8Array;
  epoch: bigint;
  tree: RatchetTree;
  /** Leaf index -> device, for every occupied leaf. */
  leaves: Map<number, DeviceRef>;
}

/** A GroupInfo carrying the ratchet tree extension, signed by the leaf it names. */
export async function parseGroupInfo(bytes: Uint8Array, field = "groupInfo"): Promise<ParsedGroupInfo> {
  const { groupInfo } = decodeWire(bytes, "mls_group_info", field);
  const cs = await suite(groupInfo.groupContext.cipherSuite);
  let tree: RatchetTree | undefined;
  try {
    tree = ratchetTreeFromExtension(groupInfo);
  } catch {
    tree = undefined;
  }
  if (!tree) throw badInput(`${field} must carry the ratchet tree extension`);
  const leaves = new Map<number, DeviceRef>();
  for (let node = 0; node < tree.length; node += 2) {
    const n = tree[node];
    if (!n || n.nodeType !== "leaf") continue;
    const device = credentialDevice(n.leaf.credential);
    if (!device) throw badInput(`${field}: leaf ${node / 2} has no "<userId>.<deviceId>" basic credential`);
    leaves.set(node / 2, device);
  }
  const signer = tree[groupInfo.signer * 2];
  if (!signer || signer.nodeType !== "leaf") throw badInput(`${field}: the signer is not a leaf of the tree`);
  const ok = await verifyGroupInfoSignature(groupInfo, signer.leaf.signaturePublicKey, cs.signature).catch(() => false);
  if (!ok) throw badInput(`${field}: bad signature`);
  return { info: groupInfo, groupId: groupInfo.groupContext.groupId, epoch: groupInfo.groupContext.epoch, tree, leaves };
}

/**
 * Before its tree maps leaves to devices: the tree hashes to the GroupContext's tree hash (which the signer signed)
 * and every leaf's signature holds. Leaves identical to the previous epoch's (same index, key, credential and
 * signature) were checked when that tree came, so a 1,500-leaf commit verifies only what changed.
 */
export async function verifyTree(gi: ParsedGroupInfo, previous: ParsedGroupInfo | null, field = "groupInfo"): Promise<void> {
  const cs = await suite(gi.info.groupContext.cipherSuite);
  const root = await treeHashRoot(gi.tree, cs.hash);
  if (!sameBytes(root, gi.info.groupContext.treeHash)) throw badInput(`${field}: the ratchet tree does not match the group context's tree hash`);
  for (let node = 0; node < gi.tree.length; node += 2) {
    const n = gi.tree[node];
    if (!n || n.nodeType !== "leaf") continue;
    const before = previous?.tree[node];
    if (before?.nodeType === "leaf" && sameLeaf(before.leaf, n.leaf)) continue;
    const leaf = n.leaf;
    const ok = await (leaf.leafNodeSource === "key_package"
      ? verifyLeafNodeSignatureKeyPackage(leaf, cs.signature)
      : verifyLeafNodeSignature(leaf, gi.groupId, node / 2, cs.signature)
    ).catch(() => false);
    if (!ok) throw badInput(`${field}: leaf ${node / 2} has a bad signature`);
  }
}

type Leaf = Extract<RatchetTree[number], { nodeType: "leaf" }>["leaf"];
const sameLeaf = (a: Leaf, b: Leaf) =>
  sameBytes(a.signature, b.signature) &&
  sameBytes(a.signaturePublicKey, b.signaturePublicKey) &&
  sameBytes(a.hpkePublicKey, b.hpkePublicKey) &&
  a.credential.credentialType === b.credential.credentialType &&
  sameBytes((a.credential as { identity?: Uint8Array }).identity ?? new Uint8Array(), (b.credential as { identity?: Uint8Array }).identity ?? new Uint8Array());

/** Checks a commit's signature against the sender's leaf in the tree of the epoch it was framed in. */
export async function verifyCommitSignature(commit: ParsedCommit, previous: ParsedGroupInfo): Promise<boolean> {
  const node = previous.tree[commit.senderLeaf * 2];
  if (!node || node.nodeType !== "leaf") return false;
  const cs = await suite(previous.info.groupContext.cipherSuite);
  return verifyFramedContentSignature(
    node.leaf.signaturePublicKey,
    "mls_public_message",
    commit.message.content,
    commit.message.auth,
    previous.info.groupContext,
    cs.signature,
  ).catch(() => false);
}

/** The cleartext framing of an application message: group id, epoch and content type. */
export function parseApplicationMessage(bytes: Uint8Array): { groupId: Uint8Array; epoch: bigint } {
  const { privateMessage } = decodeWire(bytes, "mls_private_message", "message");
  if (privateMessage.contentType !== "application") {
    throw badInput("message must be an application PrivateMessage; commits go through commitGroup");
  }
  return { groupId: privateMessage.groupId, epoch: privateMessage.epoch };
}

/** A Welcome for a commit: the ciphersuite is the only thing readable without the joiners' keys. */
export function checkWelcome(bytes: Uint8Array): void {
  const { welcome } = decodeWire(bytes, "mls_welcome", "welcome");
  if (!ALLOWED_CIPHERSUITES.includes(welcome.cipherSuite)) throw badInput("welcome: ciphersuite not accepted");
}

export const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

// Per-seed configuration of a simulated cluster: its size, Raft settings, and its fault mix. Drawn
// from its own PRNG stream (derived from the seed), so a seed names the same profile whatever the
// step count, and the profile is printed with every failure.

import { SeededRng } from '../../src/raft/rng';
import { NetworkFaults } from './network';

export interface ActionWeights {
  /** Deliver one in-flight message. */
  deliver: number;
  /** Run one Ready stage on one node. */
  ready: number;
  /** Advance simulated time by one tick. */
  tick: number;
  propose: number;
  read: number;
  /** The application snapshots its state and compacts the log. */
  snapshot: number;
  /** Any fault or operator action (chosen by `faults`). */
  fault: number;
}

export interface FaultWeights {
  crash: number;
  restart: number;
  partition: number;
  heal: number;
  confChange: number;
  transferLeader: number;
  campaign: number;
  /** Change the network's loss/duplication/delay rates for a while. */
  networkWeather: number;
  /** Put a copy of a recently sent message in flight again. */
  replay: number;
}

export interface PartitionWeights {
  /** Split the running nodes into two random halves. */
  halves: number;
  /** Cut the current leader off from everyone. */
  isolateLeader: number;
  /** Block a few random directed links. */
  oneWay: number;
}

export interface SimProfile {
  readonly nodeCount: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Leaders hand out appends and heartbeats before persisting (Ready.earlyMessages), as kvd does. */
  readonly sendBeforePersist: boolean;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMsgs: number;
  /** Proposals carry a 4-byte id plus 0..payloadPadBytes bytes. */
  readonly payloadPadBytes: number;
  readonly network: NetworkFaults;
  /** Probability that a Ready is handled in three steps (taken / persisted+sent / applied+advanced). */
  readonly splitReadyProbability: number;
  /** Upper bound of a node's probability to miss a tick (clock drift). */
  readonly maxTickSkipProbability: number;
  readonly weights: ActionWeights;
  readonly faults: FaultWeights;
  readonly partitions: PartitionWeights;
  /** Entries kept below the snapshot index when compacting (0: compact everything snapshotted). */
  readonly compactionKeepEntries: number;
  /** Membership changes never leave fewer voters than this. */
  readonly minVoters: number;
  /** Node ids go up to this (initial members plus nodes added later). */
  readonly maxNodeId: number;
  readonly unreachableReportProbability: number;
}

function weight(rng: SeededRng, zeroProbability: number, max: number): number {
  return rng.chance(zeroProbability) ? 0 : Math.round((0.1 + rng.next() * (max - 0.1)) * 100) / 100;
}

export function makeProfile(seed: number): SimProfile {
  const rng = new SeededRng((seed ^ 0x5bd1e995) >>> 0);
  const nodeCount = rng.chance(0.6) ? 3 : 5;
  const electionTicks = 6 + rng.intn(10);
  const heartbeatTicks = 1 + rng.intn(Math.max(1, Math.min(3, Math.floor(electionTicks / 4))));
  const calmNetwork = rng.chance(0.2);
  const network: NetworkFaults = calmNetwork
    ? { dropProbability: 0, duplicateProbability: 0, delayProbability: 0, maxDelayTicks: 1 }
    : {
        dropProbability: rng.chance(0.3) ? 0 : rng.next() * 0.15,
        duplicateProbability: rng.chance(0.4) ? 0 : rng.next() * 0.08,
        delayProbability: rng.chance(0.3) ? 0 : rng.next() * 0.4,
        maxDelayTicks: 1 + rng.intn(Math.max(1, Math.floor(electionTicks / 4))),
      };
  const faultFree = rng.chance(0.08);
  const weights: ActionWeights = {
    deliver: 40,
    ready: 30,
    tick: 4 + rng.intn(8),
    propose: 0.5 + rng.next() * 8,
    read: weight(rng, 0.15, 4),
    snapshot: weight(rng, 0.15, 6),
    fault: faultFree ? 0 : 0.3 + rng.next() * 4,
  };
  const faults: FaultWeights = {
    crash: weight(rng, 0.25, 3),
    restart: 0,
    partition: weight(rng, 0.25, 3),
    heal: 0,
    confChange: weight(rng, 0.25, 3),
    transferLeader: weight(rng, 0.35, 2),
    campaign: weight(rng, 0.5, 1),
    networkWeather: weight(rng, 0.4, 1.5),
    replay: weight(rng, 0.4, 3),
  };
  // Crashed nodes come back and partitions heal at a pace of the same order as they happen.
  faults.restart = faults.crash === 0 ? 0 : faults.crash * (0.5 + rng.next() * 2);
  faults.heal = faults.partition === 0 ? 0 : faults.partition * (0.5 + rng.next() * 2);
  const partitions: PartitionWeights = {
    halves: weight(rng, 0.2, 3),
    isolateLeader: weight(rng, 0.2, 3),
    oneWay: weight(rng, 0.3, 3),
  };
  if (partitions.halves + partitions.isolateLeader + partitions.oneWay === 0) partitions.halves = 1;
  return {
    nodeCount,
    electionTicks,
    heartbeatTicks,
    preVote: rng.chance(0.8),
    checkQuorum: rng.chance(0.8),
    maxSizePerMsgBytes: rng.pick([48, 200, 1024, 1024 * 1024]),
    maxInflightMsgs: rng.pick([1, 2, 8, 64, 256]),
    payloadPadBytes: rng.pick([0, 16, 100]),
    network,
    splitReadyProbability: rng.chance(0.5) ? 0 : 0.2 + rng.next() * 0.8,
    maxTickSkipProbability: rng.chance(0.5) ? 0 : rng.next() * 0.25,
    weights,
    faults,
    partitions,
    compactionKeepEntries: rng.chance(0.4) ? 0 : rng.pick([2, 10, 50]),
    minVoters: rng.chance(0.3) ? 2 : 3,
    maxNodeId: nodeCount + 1 + rng.intn(3),
    unreachableReportProbability: rng.next(),
    sendBeforePersist: rng.chance(0.5),
  };
}

const round = (x: number): string => (Math.round(x * 100) / 100).toString();

export function describeProfile(p: SimProfile): string {
  const w = p.weights;
  const f = p.faults;
  const n = p.network;
  return [
    `nodes=${p.nodeCount} maxNodeId=${p.maxNodeId} minVoters=${p.minVoters}`,
    `electionTicks=${p.electionTicks} heartbeatTicks=${p.heartbeatTicks} preVote=${p.preVote} checkQuorum=${p.checkQuorum} sendBeforePersist=${p.sendBeforePersist}`,
    `maxMsgBytes=${p.maxSizePerMsgBytes} maxInflight=${p.maxInflightMsgs} pad=${p.payloadPadBytes}`,
    `net: drop=${round(n.dropProbability)} dup=${round(n.duplicateProbability)} delay=${round(n.delayProbability)}x${n.maxDelayTicks}`,
    `splitReady=${round(p.splitReadyProbability)} tickSkip<=${round(p.maxTickSkipProbability)} compactKeep=${p.compactionKeepEntries}`,
    `weights: tick=${w.tick} propose=${round(w.propose)} read=${round(w.read)} snapshot=${round(w.snapshot)} fault=${round(w.fault)}`,
    `faults: crash=${round(f.crash)} restart=${round(f.restart)} partition=${round(f.partition)} heal=${round(f.heal)} conf=${round(f.confChange)} transfer=${round(f.transferLeader)} campaign=${round(f.campaign)} weather=${round(f.networkWeather)} replay=${round(f.replay)}`,
  ].join('\n');
}

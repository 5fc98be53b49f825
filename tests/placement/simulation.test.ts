// The scale simulation, scaled down: nodes join, fail for good, fail for a while and are drained
// while rounds run; steps fail at random; every step and operator is checked. The full 1,000-node,
// 100,000-range run is scripts/placement-sim.ts.

import { simulate, type SimulationReport } from '../../src/placement/scheduler/simulate';

function expectConverged(report: SimulationReport, boundRounds: number, spreadInsideZones = false): void {
  expect(report.violations).toEqual([]);
  expect(report.convergedRound).toBeDefined();
  expect(report.convergedRound! - report.lastEventRound).toBeLessThanOrEqual(boundRounds);
  expect(report.final.rangesOutOfPlace).toBe(0);
  expect(report.final.replicasOnDownNodes).toBe(0);
  expect(report.final.leftOnDrainingNodes).toBe(0);
  expect(spreadInsideZones ? report.final.replicaSpreadInZones : report.final.replicaSpread).toBeLessThanOrEqual(1.1);
  expect(report.final.leaderSpread).toBeLessThanOrEqual(1.25);
}

describe('scheduler simulation', () => {
  it('100 nodes × 5,000 ranges: converges within 60 rounds of the last event, with no invariant broken', () => {
    const report = simulate({ seed: 11, nodes: 100, ranges: 5_000 });
    expectConverged(report, 60);
    // The scenario really happened: nodes joined, failed and drained, steps failed, moves were made.
    expect(report.final.upNodes).toBeLessThan(110);
    expect(report.operatorsByPurpose.repair).toBeGreaterThan(0);
    expect(report.operatorsByPurpose.drain).toBeGreaterThan(0);
    expect(report.operatorsByPurpose['balance-replicas']).toBeGreaterThan(0);
    expect(report.operatorsByPurpose['balance-leaders']).toBeGreaterThan(0);
    expect(report.operatorsByPurpose.split).toBeGreaterThan(0);
    expect(report.stepRetries + report.stepAborts).toBeGreaterThan(0);
    expect(report.initial.replicaSpread).toBeGreaterThan(1.1);
    expect(report.maxInFlightOnNode).toBeLessThanOrEqual(16);
  });

  it('with a learner in every zone without a voter (5 zones, 3 voters)', () => {
    const report = simulate({ seed: 5, nodes: 60, ranges: 1_500, rules: { votersPerRange: 3, learners: 'zones-without-voter' } });
    // Every zone holds one replica of every range, so replicas balance inside each zone (failures
    // and drains left zones of different sizes).
    expectConverged(report, 60, true);
    expect(report.operatorsByPurpose.learner).toBeGreaterThan(0);
  });

  it('with 5 voters per range in 7 zones', () => {
    const report = simulate({ seed: 3, nodes: 70, zones: 7, ranges: 1_500, rules: { votersPerRange: 5, learners: 'none' } });
    expectConverged(report, 60);
  });

  it('under tight limits: one replica addition per node at a time, 50 operators per round', () => {
    const report = simulate({
      seed: 9,
      nodes: 50,
      ranges: 1_000,
      scheduler: { downReplaceAfterMs: 5_000, maxOperatorsPerRound: 50, maxInFlightOperators: 200, maxInFlightPerNode: 1, maxLeaderTransfersPerNode: 1 },
      maxRounds: 600,
    });
    expectConverged(report, 400);
    expect(report.maxIssuedInRound).toBeLessThanOrEqual(50);
    expect(report.maxInFlightOnNode).toBe(1);
    expect(report.maxTransfersOnNode).toBe(1);
  });

  it('is deterministic: the same seed gives the same report', () => {
    const options = { seed: 21, nodes: 30, ranges: 400 };
    expect(simulate(options)).toEqual(simulate(options));
  });
});

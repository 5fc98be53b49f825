// The set workload's lost-write checker: acknowledged adds must be in the final read; info adds may
// or may not be; failed adds must not; nothing may appear that was never added.

import { SetWorkloadError } from '../../scripts/jepsen/checker/errors';
import { checkSet, hasSetWorkload } from '../../scripts/jepsen/checker/set';
import { opsOf } from '../../scripts/jepsen/checker/notation';

describe('set checker', () => {
  test('every acknowledged add present: valid, with info adds counted either way', () => {
    const r = checkSet(
      opsOf(
        '1 ok put s:1=1 0-10',
        '2 ok put s:2=2 0-10',
        '3 info put s:3=3 5',
        '4 info put s:4=4 5',
        '5 fail put s:5=5 5-8',
        '9 ok get s:1->1 100-110',
        '9 ok get s:2->2 110-120',
        '9 ok get s:3->3 120-130',
        '9 ok get s:4->nil 130-140',
        '9 ok get s:5->nil 140-150',
        '1 ok put other=x 0-10', // not a set key: ignored
      ),
    );
    expect(r).toMatchObject({
      valid: true,
      attempted: 5,
      acknowledged: 2,
      present: 3,
      lost: [],
      unexpected: [],
      failedButPresent: [],
      recovered: ['3'],
      unread: [],
      anomalies: [],
    });
  });

  test('a lost add: acknowledged, absent in the final read', () => {
    const ops = opsOf('1 ok put s:1=1 0-10', '2 ok put s:2=2 0-10', '9 ok get s:1->1 100-110', '9 ok get s:2->nil 110-120');
    const r = checkSet(ops);
    expect(r.valid).toBe(false);
    expect(r.lost).toEqual(['2']);
    expect(r.anomalies).toEqual([
      {
        kind: 'lost-add',
        element: '2',
        ops: [ops[1], ops[3]],
        explanation: 'the add of "2" was acknowledged (line 2), but the final read at line 4 found it absent',
      },
    ]);
  });

  test('seen during the run, gone at the end: lost', () => {
    const r = checkSet(opsOf('1 ok put s:1=1 0-10', '2 ok get s:1->1 20-30', '9 ok get s:1->nil 100-110'));
    expect(r.lost).toEqual(['1']);
  });

  test('a read concurrent with the add is no final read', () => {
    const r = checkSet(opsOf('1 ok put s:1=1 0-50', '2 ok get s:1->nil 10-20'));
    expect(r).toMatchObject({ valid: 'unknown', unread: ['1'], lost: [] });
  });

  test('an element that was never added appears', () => {
    const r = checkSet(opsOf('1 ok put s:1=1 0-10', '9 ok get s:1->1 100-110', '9 ok get s:7->7 110-120'));
    expect(r.valid).toBe(false);
    expect(r.unexpected).toEqual(['7']);
    expect(r.anomalies[0]?.explanation).toBe('element "7" was read (line 3) but never added');
  });

  test('a key holding something other than its element', () => {
    const r = checkSet(opsOf('1 ok put s:1=1 0-10', '9 ok get s:1->2 100-110'));
    expect(r.unexpected).toEqual(['1']);
  });

  test('a failed add that is present', () => {
    const r = checkSet(opsOf('1 fail put s:1=1 0-10', '9 ok get s:1->1 100-110'));
    expect(r.failedButPresent).toEqual(['1']);
    expect(r.valid).toBe(false);
  });

  test('an acknowledged add never read back makes the verdict unknown', () => {
    const r = checkSet(opsOf('1 ok put s:1=1 0-10', '9 fail get s:1 100-110'));
    expect(r).toMatchObject({ valid: 'unknown', unread: ['1'] });
  });

  test('operations the set workload never issues are errors', () => {
    expect(() => checkSet(opsOf('1 ok put s:1=1 0-10', '1 ok delete s:1 20-30'))).toThrow(SetWorkloadError);
    expect(() => checkSet(opsOf('1 ok put s:1=2 0-10'))).toThrow(/must write "1", not "2"/);
  });

  test('hasSetWorkload looks for s: keys', () => {
    expect(hasSetWorkload(opsOf('1 ok put k=1 0-10'))).toBe(false);
    expect(hasSetWorkload(opsOf('1 ok put s:1=1 0-10'))).toBe(true);
  });
});

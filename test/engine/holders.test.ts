// The hint for each kind of pin holder names the command that actually frees it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { holdersHint } from '../../src/engine/holders.js';

const V = 'a'.repeat(64);

describe('holder hints', () => {
  test('per kind', () => {
    assert.match(holdersHint('approval', V, [{ kind: 'live_run', workflow_id: 'order-42', run_id: 'r' }]), /aion wait approval aaaaaaaaaaaa --drained --timeout 10m.*aion terminate order-42/);
    assert.match(holdersHint('approval', V, [{ kind: 'recoverable_run', workflow_id: 'order-7', run_id: 'r' }]), /aion serve.*aion terminate order-7/);
    const child = holdersHint('approval', V, [{ kind: 'recorded_child', child_workflow_id: 'p/child-1', recorded_by: 'parent-1' }]);
    assert.match(child, /the child starts when aion serve drives its parent; or terminate the parent: aion terminate parent-1/);
    assert.doesNotMatch(child, /terminate p\/child-1/, 'terminating the child itself is not what frees it');
    assert.match(holdersHint('approval', V, [{ kind: 'in_flight_start' }]), /retry in a moment/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryLogger } from '../../test/helpers/memoryLogger.js';
import { SourcePenalties, type PenaltySettings } from './sourcePenalties.js';

const SETTINGS: PenaltySettings = {
  enabled: true,
  durationsMs: { noauth: 1000, authfail: 5000, banner_timeout: 10_000, grace_exceeded: 20_000 },
  minMs: 15_000,
  maxMs: 600_000,
  exempt: ['127.0.0.0/8', '::1'],
};

function make(settings: Partial<PenaltySettings> = {}) {
  let now = 1_000_000;
  const { log, lines } = memoryLogger();
  const reasons: string[] = [];
  const penalties = new SourcePenalties({ settings: { ...SETTINGS, ...settings }, blockSize: { v4: 32, v6: 64 }, log, onPenalty: (reason) => reasons.push(reason), now: () => now });
  return { penalties, lines, reasons, advance: (ms: number) => (now += ms) };
}

describe('SourcePenalties', () => {
  it('refuses a source once its accrued penalty reaches min, logs it once, and lets it back when it has run out', () => {
    const { penalties, lines, reasons, advance } = make();
    penalties.penalise('198.51.100.7', 'banner_timeout');
    assert.equal(penalties.refuses('198.51.100.7'), false, '10 s accrued is below the 15 s minimum');
    penalties.penalise('198.51.100.7', 'authfail');
    assert.equal(penalties.refuses('198.51.100.7'), true);
    assert.equal(penalties.refuses('198.51.100.8'), false, 'another address is not touched');
    // Connections still open when the penalty began add to it (as in OpenSSH), without a log line each.
    for (let i = 0; i < 5; i++) penalties.penalise('198.51.100.7', 'noauth');
    assert.equal(lines.filter((line) => line.msg === 'source penalised: refusing its new connections').length, 1);
    assert.deepEqual(reasons, ['authfail']);
    assert.equal(penalties.activeCount, 1);
    advance(19_000);
    assert.equal(penalties.refuses('198.51.100.7'), true);
    advance(1001);
    assert.equal(penalties.refuses('198.51.100.7'), false);
    penalties.close();
  });

  it('penalises a repeat offender for twice as long each time, up to max', () => {
    const { penalties, advance } = make();
    const lengths: number[] = [];
    for (let round = 0; round < 8; round++) {
      penalties.penalise('203.0.113.5', 'grace_exceeded');
      let refusedFor = 0;
      while (penalties.refuses('203.0.113.5')) {
        advance(1000);
        refusedFor += 1;
      }
      lengths.push(refusedFor);
    }
    assert.deepEqual(lengths, [20, 30, 60, 120, 240, 480, 600, 600]);
    penalties.close();
  });

  it('counts every address of an IPv6 /64 as one source', () => {
    const { penalties } = make();
    penalties.penalise('2001:db8:1:2::10', 'banner_timeout');
    penalties.penalise('2001:db8:1:2::20', 'banner_timeout');
    assert.equal(penalties.refuses('2001:db8:1:2::ffff'), true);
    assert.equal(penalties.refuses('2001:db8:1:3::10'), false);
    penalties.close();
  });

  it('never penalises exempt sources, nor anything when turned off', () => {
    const { penalties } = make();
    penalties.exemptRange('10.0.0.0/8');
    for (const ip of ['127.0.0.9', '::1', '10.1.2.3']) {
      for (let i = 0; i < 10; i++) penalties.penalise(ip, 'grace_exceeded');
      assert.equal(penalties.refuses(ip), false, ip);
    }
    penalties.close();
    const off = make({ enabled: false });
    for (let i = 0; i < 10; i++) off.penalties.penalise('192.0.2.1', 'grace_exceeded');
    assert.equal(off.penalties.refuses('192.0.2.1'), false);
  });

  it('stops tracking new sources past max_sources instead of growing', () => {
    const { penalties, lines } = make({ maxSources: 2 });
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) penalties.penalise(ip, 'grace_exceeded');
    assert.equal(penalties.refuses('192.0.2.3'), false);
    assert.equal(lines.filter((line) => line.msg.startsWith('too many penalised sources')).length, 1);
    penalties.close();
  });
});

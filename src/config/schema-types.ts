/** The value types the configuration's settings are made of. */
import { z } from 'zod';

export const DAY_MS = 86_400_000;
export const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
export const text = z.string().min(1);
export const orNull = <S extends z.ZodType>(schema: S) => schema.optional().transform((v) => v ?? null);
